/* Edge mode's principal header from real C: sign, verify, refuse. */
#include <stdint.h>

#include "check.h"

#define SECRET "c-test-upstream-secret-0123456789"
#define NOW_MS 1750000000000LL
#define PATH "/ws/admin/chat/"
#define STAFF                                                                               \
  "{\"id\":\"1\",\"numeric\":true,\"is_staff\":true,\"is_superuser\":false,\"is_active\":true," \
  "\"auth\":\"jwt\",\"carrier\":\"query\",\"exp\":1750000300}"

static wsauth_edge_verifier *new_verifier(const char *secret) {
  wsauth_edge_verifier *v = NULL;
  CHECK_RC(wsauth_edge_verifier_new(secret, strlen(secret), &v), WSAUTH_RESULT_OK);
  CHECK(v != NULL);
  return v;
}

/* Signs into `out` (NUL-terminated); returns the length. */
static size_t sign(const wsauth_edge_verifier *v, const char *user, const char *route, const char *path,
                   long long now_ms, char *out, size_t cap) {
  size_t len = 0;
  size_t user_len = user ? strlen(user) : 0;
  CHECK(wsauth_edge_sign_capacity(user_len, strlen(route), strlen(path)) < cap);
  CHECK_RC(wsauth_edge_sign(v, user, user_len, route, strlen(route), path, strlen(path), now_ms, out,
                            cap - 1, &len),
           WSAUTH_RESULT_OK);
  CHECK(len > 0 && len < cap);
  out[len] = '\0';
  return len;
}

/* Verifies; returns a malloc'd NUL-terminated copy of the JSON. */
static char *verify(const wsauth_edge_verifier *v, const char *value, size_t len, const char *path,
                    long long now_ms) {
  char out[WSAUTH_EDGE_VERIFY_JSON_CAPACITY];
  size_t n = 0;
  CHECK_RC(wsauth_edge_verify_json(v, value, len, path, strlen(path), now_ms, WSAUTH_EDGE_DEFAULT_MAX_AGE_MS,
                                   out, sizeof out, &n),
           WSAUTH_RESULT_OK);
  return dup_out(out, n);
}

static void test_round_trip(void) {
  wsauth_edge_verifier *v = new_verifier(SECRET);
  char h[4096];
  size_t n = sign(v, STAFF, "admin_chat", PATH, NOW_MS, h, sizeof h);
  CHECK(strncmp(h, "v1.1750000000000.", 17) == 0);
  char *j = verify(v, h, n, PATH, NOW_MS + 1);
  CHECK(strstr(j, "\"valid\":true") != NULL);
  CHECK(strstr(j, "\"id\":\"1\"") != NULL);
  CHECK(strstr(j, "\"is_staff\":true") != NULL);
  CHECK(strstr(j, "\"route\":\"admin_chat\"") != NULL);
  CHECK(strstr(j, "\"issued_at_ms\":1750000000000") != NULL);
  free(j);

  /* Anonymous: a NULL user document. */
  n = sign(v, NULL, "chat", "/ws/chat/lobby/", NOW_MS, h, sizeof h);
  j = verify(v, h, n, "/ws/chat/lobby/", NOW_MS);
  CHECK(strstr(j, "\"valid\":true,\"user\":null") != NULL);
  free(j);
  wsauth_edge_verifier_free(v);
}

static void test_refusals(void) {
  wsauth_edge_verifier *v = new_verifier(SECRET);
  wsauth_edge_verifier *other = new_verifier("another-upstream-secret");
  char h[4096];
  size_t n = sign(v, STAFF, "admin_chat", PATH, NOW_MS, h, sizeof h);
  struct {
    const wsauth_edge_verifier *v;
    const char *value;
    size_t len;
    const char *path;
    long long now;
    const char *kind;
  } rows[] = {
      {v, NULL, 0, PATH, NOW_MS, "missing"},
      {v, NULL, 99, PATH, NOW_MS, "missing"},
      {v, h, n, "/ws/logs/", NOW_MS, "wrong_path"},
      {v, h, n, PATH, NOW_MS + WSAUTH_EDGE_DEFAULT_MAX_AGE_MS + 1, "stale"},
      {v, h, n, PATH, NOW_MS - 60000, "from_the_future"},
      {other, h, n, PATH, NOW_MS, "bad_signature"},
      {v, "garbage", 7, PATH, NOW_MS, "malformed"},
      {v, "\xff\xfe", 2, PATH, NOW_MS, "malformed"},
      {v, "", 0, PATH, NOW_MS, "malformed"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    char *j = verify(rows[i].v, rows[i].value, rows[i].len, rows[i].path, rows[i].now);
    char want[64];
    snprintf(want, sizeof want, "\"kind\":\"%s\"", rows[i].kind);
    CHECK(strstr(j, "\"valid\":false") != NULL);
    if (strstr(j, want) == NULL) {
      fprintf(stderr, "row %zu: %s\n", i, j);
    }
    CHECK(strstr(j, want) != NULL);
    free(j);
  }
  /* Every flipped byte is refused. */
  for (size_t i = 0; i < n; i++) {
    h[i] ^= 1;
    char *j = verify(v, h, n, PATH, NOW_MS);
    CHECK(strstr(j, "\"valid\":false") != NULL);
    free(j);
    h[i] ^= 1;
  }
  /* Too large: refused without being read (the pointer holds only one byte). */
  char one = 'v';
  char *j = verify(v, &one, WSAUTH_EDGE_MAX_HEADER_BYTES + 1, PATH, NOW_MS);
  CHECK(strstr(j, "\"kind\":\"too_large\"") != NULL);
  free(j);

  wsauth_close c;
  memset(&c, 0, sizeof c);
  CHECK_RC(wsauth_edge_refusal(&c), WSAUTH_RESULT_OK);
  CHECK(c.code == 4401);
  CHECK(c.reason_len == strlen(c.reason) && c.reason_len > 0);
  CHECK_RC(wsauth_edge_refusal(NULL), WSAUTH_RESULT_NULL_PARAMETER);
  wsauth_edge_verifier_free(other);
  wsauth_edge_verifier_free(v);
}

static void test_errors(void) {
  wsauth_edge_verifier *v = (wsauth_edge_verifier *)0x1;
  CHECK_RC(wsauth_edge_verifier_new("", 0, &v), WSAUTH_RESULT_INVALID_KEY);
  CHECK(v == (wsauth_edge_verifier *)0x1); /* outputs untouched on failure */
  CHECK_RC(wsauth_edge_verifier_new(NULL, 0, &v), WSAUTH_RESULT_INVALID_KEY); /* zero length: empty */
  CHECK_RC(wsauth_edge_verifier_new(NULL, 5, &v), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK(v == (wsauth_edge_verifier *)0x1);
  CHECK_RC(wsauth_edge_verifier_new(SECRET, strlen(SECRET), NULL), WSAUTH_RESULT_NULL_PARAMETER);
  wsauth_edge_verifier_free(NULL);

  v = new_verifier(SECRET);
  char out[WSAUTH_EDGE_VERIFY_JSON_CAPACITY];
  size_t n = 12345;
  CHECK_RC(wsauth_edge_verify_json(NULL, "x", 1, PATH, strlen(PATH), NOW_MS, 1, out, sizeof out, &n),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_json(v, "x", 1, NULL, 3, NOW_MS, 1, out, sizeof out, &n),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_json(v, "x", 1, PATH, strlen(PATH), NOW_MS, 1, out, sizeof out, NULL),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_json(v, "x", 1, PATH, strlen(PATH), NOW_MS, 1, NULL, 10, &n),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_json(v, "x", 1, "/\xff", 2, NOW_MS, 1, out, sizeof out, &n),
           WSAUTH_RESULT_INVALID_UTF8);
  CHECK(n == 12345);

  /* A short buffer: nothing written, the needed length reported. */
  char h[4096];
  size_t hn = sign(v, STAFF, "admin_chat", PATH, NOW_MS, h, sizeof h);
  char small[8];
  memset(small, 'Z', sizeof small);
  CHECK_RC(wsauth_edge_verify_json(v, h, hn, PATH, strlen(PATH), NOW_MS, 1000, small, sizeof small, &n),
           WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(n > sizeof small);
  CHECK(small[0] == 'Z');
  size_t need = n;
  CHECK_RC(wsauth_edge_verify_json(v, h, hn, PATH, strlen(PATH), NOW_MS, 1000, out, need, &n), WSAUTH_RESULT_OK);
  CHECK(n == need && out_has(out, n, "\"valid\":true"));

  size_t sn = 777;
  CHECK_RC(wsauth_edge_sign(v, STAFF, strlen(STAFF), "admin_chat", 10, PATH, strlen(PATH), NOW_MS, small, sizeof small,
                            &sn),
           WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(sn == hn);
  CHECK(small[0] == 'Z');
  sn = 777;
  CHECK_RC(wsauth_edge_sign(v, "{\"id\":\"1\"}", 10, "r", 1, PATH, strlen(PATH), NOW_MS, h, sizeof h, &sn),
           WSAUTH_RESULT_INVALID_REQUEST);
  CHECK(sn == 777);
  CHECK_RC(wsauth_edge_sign(v, "not json", 8, "r", 1, PATH, strlen(PATH), NOW_MS, h, sizeof h, &sn),
           WSAUTH_RESULT_INVALID_REQUEST);
  CHECK_RC(wsauth_edge_sign(v, STAFF, strlen(STAFF), "\xc3", 1, PATH, strlen(PATH), NOW_MS, h, sizeof h, &sn),
           WSAUTH_RESULT_INVALID_UTF8);
  CHECK_RC(wsauth_edge_sign(v, STAFF, strlen(STAFF), NULL, 1, PATH, strlen(PATH), NOW_MS, h, sizeof h, &sn),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_sign(NULL, STAFF, strlen(STAFF), "r", 1, PATH, strlen(PATH), NOW_MS, h, sizeof h, &sn),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK(sn == 777);
  wsauth_edge_verifier_free(v);
}

/* One header for the table below. */
static wsauth_header hdr(const char *name, const char *value, size_t value_len) {
  wsauth_header h;
  h.name = name;
  h.name_len = strlen(name);
  h.value = value;
  h.value_len = value_len;
  return h;
}

/* Verifies from headers; returns a malloc'd NUL-terminated copy of the JSON. */
static char *verify_headers(const wsauth_edge_verifier *v, const char *name, const wsauth_header *headers,
                            size_t n_headers, const char *path, size_t path_len, long long now_ms) {
  char out[WSAUTH_EDGE_VERIFY_JSON_CAPACITY];
  size_t n = 0;
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, strlen(name), headers, n_headers, path, path_len, now_ms,
                                           WSAUTH_EDGE_DEFAULT_MAX_AGE_MS, out, sizeof out, &n),
           WSAUTH_RESULT_OK);
  return dup_out(out, n);
}

static void test_verify_headers(void) {
  wsauth_edge_verifier *v = new_verifier(SECRET);
  char h[4096];
  size_t n = sign(v, STAFF, "admin_chat", PATH, NOW_MS, h, sizeof h);
  char one = 'v'; /* a too-large value is never read: one byte behind it */
  const char *name = "x-wsauth-principal";
  wsauth_header one_good[] = {hdr("origin", "http://a", 8), hdr("X-WsAuth-Principal", h, n)};
  wsauth_header two_good[] = {hdr("x-wsauth-principal", h, n), hdr("host", "app", 3), hdr("x-wsauth-principal", h, n)};
  wsauth_header good_and_junk[] = {hdr("x-wsauth-principal", "junk", 4), hdr("X-WSAUTH-PRINCIPAL", h, n)};
  wsauth_header two_large[] = {hdr("x-wsauth-principal", &one, WSAUTH_EDGE_MAX_HEADER_BYTES + 1),
                               hdr("x-wsauth-principal", &one, WSAUTH_EDGE_MAX_HEADER_BYTES + 1)};
  wsauth_header one_large[] = {hdr("x-wsauth-principal", &one, WSAUTH_EDGE_MAX_HEADER_BYTES + 1)};
  wsauth_header others[] = {hdr("x-wsauth-principal-2", h, n), hdr("\xff\xfe", "\xff", 1)};
  struct {
    const wsauth_header *headers;
    size_t n;
    const char *path;
    size_t path_len;
    const char *kind; /* NULL: valid */
  } rows[] = {
      {one_good, 2, PATH, strlen(PATH), NULL},
      {NULL, 0, PATH, strlen(PATH), "missing"},
      {others, 2, PATH, strlen(PATH), "missing"},
      {two_good, 3, PATH, strlen(PATH), "repeated"},
      {good_and_junk, 2, PATH, strlen(PATH), "repeated"},
      {two_large, 2, PATH, strlen(PATH), "repeated"},
      {one_large, 1, PATH, strlen(PATH), "too_large"},
      {one_good, 2, "/ws/admin/chat/\xff", 16, "wrong_path"},
      {one_good, 2, "/ws/\xed\xa0\x80/", 7, "wrong_path"}, /* a lone surrogate, as surrogatepass writes it */
      {one_good, 2, "/ws/logs/", 9, "wrong_path"},
      {two_good, 3, "/\xff", 2, "repeated"},
      {NULL, 0, "/\xff", 2, "missing"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    char *j = verify_headers(v, name, rows[i].headers, rows[i].n, rows[i].path, rows[i].path_len, NOW_MS);
    if (rows[i].kind == NULL) {
      CHECK(strstr(j, "\"valid\":true") != NULL);
      CHECK(strstr(j, "\"route\":\"admin_chat\"") != NULL);
    } else {
      char want[64];
      snprintf(want, sizeof want, "\"kind\":\"%s\"", rows[i].kind);
      if (strstr(j, want) == NULL) {
        fprintf(stderr, "headers row %zu: %s\n", i, j);
      }
      CHECK(strstr(j, "\"valid\":false") != NULL);
      CHECK(strstr(j, want) != NULL);
    }
    free(j);
  }
  /* The configured name, in any case, is the one read. */
  char *j = verify_headers(v, "X-Edge", one_good, 2, PATH, strlen(PATH), NOW_MS);
  CHECK(strstr(j, "\"kind\":\"missing\"") != NULL);
  free(j);
  wsauth_header edge[] = {hdr("x-edge", h, n)};
  j = verify_headers(v, "X-Edge", edge, 1, PATH, strlen(PATH), NOW_MS);
  CHECK(strstr(j, "\"valid\":true") != NULL);
  free(j);
  /* One header: the same answer as wsauth_edge_verify_json. */
  j = verify_headers(v, name, one_good, 2, PATH, strlen(PATH), NOW_MS);
  char *k = verify(v, h, n, PATH, NOW_MS);
  CHECK(strcmp(j, k) == 0);
  free(j);
  free(k);

  /* NULL arguments and oversized inputs: typed errors, outputs untouched. */
  char out[WSAUTH_EDGE_VERIFY_JSON_CAPACITY];
  size_t len = 12345;
  size_t nl = strlen(name);
  CHECK_RC(wsauth_edge_verify_headers_json(NULL, name, nl, one_good, 2, PATH, strlen(PATH), NOW_MS, 1000, out,
                                           sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_headers_json(v, NULL, nl, one_good, 2, PATH, strlen(PATH), NOW_MS, 1000, out, sizeof out,
                                           &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, nl, NULL, 2, PATH, strlen(PATH), NOW_MS, 1000, out, sizeof out,
                                           &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, nl, one_good, 2, NULL, 3, NOW_MS, 1000, out, sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, nl, one_good, 2, PATH, strlen(PATH), NOW_MS, 1000, NULL, 10, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, nl, one_good, 2, PATH, strlen(PATH), NOW_MS, 1000, out, sizeof out,
                                           NULL),
           WSAUTH_RESULT_NULL_PARAMETER);
  wsauth_header null_name[] = {{NULL, 3, "x", 1}};
  wsauth_header null_value[] = {{"x-a", 3, NULL, 1}};
  wsauth_header null_large[] = {{"x-a", 3, NULL, WSAUTH_EDGE_MAX_HEADER_BYTES + 1}};
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, nl, null_name, 1, PATH, strlen(PATH), NOW_MS, 1000, out,
                                           sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, nl, null_value, 1, PATH, strlen(PATH), NOW_MS, 1000, out,
                                           sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, nl, null_large, 1, PATH, strlen(PATH), NOW_MS, 1000, out,
                                           sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, nl, one_good, (size_t)1 << 17, PATH, strlen(PATH), NOW_MS, 1000,
                                           out, sizeof out, &len),
           WSAUTH_RESULT_INPUT_TOO_LARGE);
  CHECK(len == 12345);
  /* Zero lengths accept NULL pointers: an empty name matches no header. */
  CHECK_RC(wsauth_edge_verify_headers_json(v, NULL, 0, NULL, 0, NULL, 0, NOW_MS, 1000, out, sizeof out, &len),
           WSAUTH_RESULT_OK);
  CHECK(out_has(out, len, "\"kind\":\"missing\""));

  /* A short buffer: nothing written, the needed length reported. */
  char small[8];
  memset(small, 'Z', sizeof small);
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, nl, two_good, 3, PATH, strlen(PATH), NOW_MS, 1000, small,
                                           sizeof small, &len),
           WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(len > sizeof small);
  CHECK(small[0] == 'Z');
  size_t need = len;
  CHECK_RC(wsauth_edge_verify_headers_json(v, name, nl, two_good, 3, PATH, strlen(PATH), NOW_MS, 1000, out, need,
                                           &len),
           WSAUTH_RESULT_OK);
  CHECK(len == need && out_has(out, len, "\"kind\":\"repeated\""));
  wsauth_edge_verifier_free(v);
}

int main(void) {
  test_round_trip();
  test_refusals();
  test_errors();
  test_verify_headers();
  return finish("c edge");
}
