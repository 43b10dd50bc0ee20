/* Session verifier entry points, success and error paths, from real C. */
#include <stdint.h>

#include "check.h"

#define NOW 1750000000LL
#define SECRET "c-test-django-secret-key-0123456789abcdefghijklmnop"
#define OLD_SECRET "c-test-old-django-secret-key-9876543210zyxwvutsrq"
#define PASSWORD "pbkdf2_sha256$1000000$c0salt$Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="
#define OTHER_PASSWORD "pbkdf2_sha256$1000000$c0salt$b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcm90aGVyb3Q="
#define USER(password, active) \
  "\"user\":{\"pk\":7,\"password\":\"" password "\",\"is_active\":" active ",\"is_staff\":true,\"is_superuser\":false}"

static wsauth_session_verifier *new_verifier(const char *settings) {
  wsauth_session_verifier *v = NULL;
  CHECK_RC(wsauth_session_verifier_new(settings, strlen(settings), &v), WSAUTH_RESULT_OK);
  CHECK(v != NULL);
  return v;
}

static char *mint(const wsauth_session_verifier *v, long long now) {
  const char *req = "{\"user_id\":\"7\",\"password\":\"" PASSWORD "\"}";
  char buf[2048];
  size_t len = 0;
  CHECK_RC(wsauth_session_verifier_mint(v, req, strlen(req), now, buf, sizeof buf, &len), WSAUTH_RESULT_OK);
  CHECK(len > 0);
  return dup_out(buf, len);
}

/* One step; returns a malloc'd NUL-terminated copy of the answer. */
static char *step(const wsauth_session_verifier *v, const char *req, long long now) {
  char out[4096];
  size_t len = 0;
  CHECK_RC(wsauth_session_verifier_step_json(v, req, strlen(req), now, out, sizeof out, &len), WSAUTH_RESULT_OK);
  return dup_out(out, len);
}

/* Builds a request from a printf format into a static buffer. */
static const char *req(const char *fmt, const char *a, const char *b) {
  static char buf[8192];
  snprintf(buf, sizeof buf, fmt, a, b);
  return buf;
}

static void test_signed_cookies(void) {
  wsauth_session_verifier *v =
      new_verifier("{\"secret\":\"" SECRET "\",\"engine\":\"django.contrib.sessions.backends.signed_cookies\"}");
  char *cookie = mint(v, NOW);

  char *need = step(v, req("{\"cookie\":\"%s\"}", cookie, ""), NOW + 5);
  CHECK(strstr(need, "\"need\":\"user\"") != NULL);
  CHECK(strstr(need, "\"user_id\":\"7\"") != NULL);
  free(need);

  char *ok = step(v, req("{\"cookie\":\"%s\"," USER(PASSWORD, "true") "}", cookie, ""), NOW + 5);
  CHECK(strstr(ok, "\"valid\":true") != NULL);
  CHECK(strstr(ok, "\"user_id\":\"7\"") != NULL);
  CHECK(strstr(ok, "\"is_staff\":true") != NULL);
  free(ok);

  /* The same cookie inside a Cookie header, parsed as Channels parses it. */
  char header[2048];
  snprintf(header, sizeof header, "csrftoken=abc; sessionid=%s; theme=dark", cookie);
  char *from_header = step(v, req("{\"cookie_header\":\"%s\"," USER(PASSWORD, "true") "}", header, ""), NOW + 5);
  CHECK(strstr(from_header, "\"valid\":true") != NULL);
  free(from_header);
  char *no_cookie = step(v, "{\"cookie_header\":\"csrftoken=abc\"}", NOW);
  CHECK(strstr(no_cookie, "\"valid\":false") != NULL);
  CHECK(strstr(no_cookie, "\"kind\":\"bad_session\"") != NULL);
  free(no_cookie);

  /* Password changed: the session hash no longer matches. */
  char *changed = step(v, req("{\"cookie\":\"%s\"," USER(OTHER_PASSWORD, "true") "}", cookie, ""), NOW + 5);
  CHECK(strstr(changed, "\"kind\":\"session_hash_mismatch\"") != NULL);
  free(changed);

  /* Inactive, deleted. */
  char *inactive = step(v, req("{\"cookie\":\"%s\"," USER(PASSWORD, "false") "}", cookie, ""), NOW + 5);
  CHECK(strstr(inactive, "\"valid\":false") != NULL);
  free(inactive);
  char *deleted = step(v, req("{\"cookie\":\"%s\",\"user\":null}", cookie, ""), NOW + 5);
  CHECK(strstr(deleted, "\"kind\":\"user_not_found\"") != NULL);
  free(deleted);

  /* SESSION_COOKIE_AGE: exactly the age is still valid, one second more is expired. */
  char *at_age = step(v, req("{\"cookie\":\"%s\"}", cookie, ""), NOW + 1209600);
  CHECK(strstr(at_age, "\"need\":\"user\"") != NULL);
  free(at_age);
  char *expired = step(v, req("{\"cookie\":\"%s\"}", cookie, ""), NOW + 1209601);
  CHECK(strstr(expired, "\"kind\":\"session_expired\"") != NULL);
  free(expired);

  /* Tampered cookie. */
  size_t n = strlen(cookie);
  cookie[n - 1] = cookie[n - 1] == 'A' ? 'B' : 'A';
  char *tampered = step(v, req("{\"cookie\":\"%s\"}", cookie, ""), NOW + 5);
  CHECK(strstr(tampered, "\"kind\":\"bad_session\"") != NULL);
  free(tampered);

  free(cookie);
  wsauth_session_verifier_free(v);
}

static void test_db_rows(void) {
  wsauth_session_verifier *v = new_verifier("{\"secret\":\"" SECRET "\",\"engine\":\"db\"}");
  char *data = mint(v, NOW);
  const char *key = "k7v3x9q2m4n8p1r5s6t0u2w4y6z8a0b1";

  char *need_row = step(v, req("{\"cookie\":\"%s\"}", key, ""), NOW);
  CHECK(strstr(need_row, "\"need\":\"session_row\"") != NULL);
  CHECK(strstr(need_row, key) != NULL);
  free(need_row);

  char *no_row = step(v, req("{\"cookie\":\"%s\",\"row\":null}", key, ""), NOW);
  CHECK(strstr(no_row, "\"valid\":false") != NULL);
  free(no_row);

  char row_req[4096];
  snprintf(row_req, sizeof row_req,
           "{\"cookie\":\"%s\",\"row\":{\"session_key\":\"%s\",\"session_data\":\"%s\",\"expire_date\":%lld}," USER(
               PASSWORD, "true") "}",
           key, key, data, NOW + 100);
  char *ok = step(v, row_req, NOW);
  CHECK(strstr(ok, "\"valid\":true") != NULL);
  CHECK(strstr(ok, "\"pk\":7") != NULL);
  free(ok);
  /* expire_date == now is expired (Django: expire_date__gt=now). */
  char *expired = step(v, row_req, NOW + 100);
  CHECK(strstr(expired, "\"valid\":false") != NULL);
  free(expired);

  /* expire_date as the database stores it, ISO 8601 text: converted by the core
   * (NOW + 100 is 2025-06-15T15:08:20Z; a fraction counts as the next second). */
  const char *isos[] = {"2025-06-15T15:08:20+00:00", "2025-06-15 15:08:19.000001", "2025-06-15T17:08:20+02:00"};
  for (size_t i = 0; i < sizeof isos / sizeof isos[0]; i++) {
    snprintf(row_req, sizeof row_req,
             "{\"cookie\":\"%s\",\"row\":{\"session_key\":\"%s\",\"session_data\":\"%s\",\"expire_date\":\"%s\"}," USER(
                 PASSWORD, "true") "}",
             key, key, data, isos[i]);
    char *iso_ok = step(v, row_req, NOW + 99);
    CHECK(strstr(iso_ok, "\"valid\":true") != NULL);
    free(iso_ok);
    char *iso_expired = step(v, row_req, NOW + 100);
    CHECK(strstr(iso_expired, "\"kind\":\"session_expired\"") != NULL);
    free(iso_expired);
  }
  snprintf(row_req, sizeof row_req,
           "{\"cookie\":\"%s\",\"row\":{\"session_key\":\"%s\",\"session_data\":\"%s\",\"expire_date\":\"June\"}}", key,
           key, data);
  char bad_out[256];
  size_t bad_len = 0;
  CHECK_RC(wsauth_session_verifier_step_json(v, row_req, strlen(row_req), NOW, bad_out, sizeof bad_out, &bad_len),
           WSAUTH_RESULT_INVALID_REQUEST);

  /* A key shorter than 8 characters is not a session key. */
  char *short_key = step(v, "{\"cookie\":\"abc\"}", NOW);
  CHECK(strstr(short_key, "\"valid\":false") != NULL);
  free(short_key);

  free(data);
  wsauth_session_verifier_free(v);
}

static void test_fallback_keys(void) {
  /* A session made under the old key, read after rotating SECRET_KEY. */
  wsauth_session_verifier *old =
      new_verifier("{\"secret\":\"" OLD_SECRET "\",\"engine\":\"signed_cookies\"}");
  char *cookie = mint(old, NOW);
  wsauth_session_verifier *django = new_verifier("{\"secret\":\"" SECRET "\",\"fallback_secrets\":[\"" OLD_SECRET
                                                 "\"],\"engine\":\"signed_cookies\",\"accept_fallback_hash\":true}");
  wsauth_session_verifier *channels = new_verifier("{\"secret\":\"" SECRET "\",\"fallback_secrets\":[\"" OLD_SECRET
                                                   "\"],\"engine\":\"signed_cookies\",\"accept_fallback_hash\":false}");
  wsauth_session_verifier *no_fallbacks = new_verifier("{\"secret\":\"" SECRET "\",\"engine\":\"signed_cookies\"}");
  const char *r = req("{\"cookie\":\"%s\"," USER(PASSWORD, "true") "}", cookie, "");
  char *d = step(django, r, NOW + 5);
  CHECK(strstr(d, "\"valid\":true") != NULL);
  free(d);
  char *c = step(channels, r, NOW + 5);
  CHECK(strstr(c, "\"kind\":\"session_hash_mismatch\"") != NULL);
  free(c);
  char *n = step(no_fallbacks, r, NOW + 5);
  CHECK(strstr(n, "\"kind\":\"bad_session\"") != NULL);
  free(n);
  free(cookie);
  wsauth_session_verifier_free(old);
  wsauth_session_verifier_free(django);
  wsauth_session_verifier_free(channels);
  wsauth_session_verifier_free(no_fallbacks);
}

static void test_errors(void) {
  wsauth_session_verifier *v = (wsauth_session_verifier *)0x1;
  CHECK_RC(wsauth_session_verifier_new(NULL, 5, &v), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_session_verifier_new("{}", 2, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_session_verifier_new("{}", 2, &v), WSAUTH_RESULT_INVALID_SETTINGS);
  const char *bad_engine = "{\"secret\":\"k\",\"engine\":\"redis\"}";
  CHECK_RC(wsauth_session_verifier_new(bad_engine, strlen(bad_engine), &v), WSAUTH_RESULT_INVALID_SETTINGS);
  const char *empty = "{\"secret\":\"\"}";
  CHECK_RC(wsauth_session_verifier_new(empty, strlen(empty), &v), WSAUTH_RESULT_INVALID_KEY);
  const char bad_utf8[] = "{\"secret\":\"\xc0\xaf\"}";
  CHECK_RC(wsauth_session_verifier_new(bad_utf8, sizeof bad_utf8 - 1, &v), WSAUTH_RESULT_INVALID_UTF8);
  CHECK(v == (wsauth_session_verifier *)0x1);

  v = new_verifier("{\"secret\":\"" SECRET "\"}");
  char out[256];
  size_t len = 999;
  const char *r = "{\"cookie\":\"k7v3x9q2m4n8p1r5s6t0u2w4y6z8a0b1\"}";
  CHECK_RC(wsauth_session_verifier_step_json(NULL, r, strlen(r), NOW, out, sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_session_verifier_step_json(v, NULL, 3, NOW, out, sizeof out, &len), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_session_verifier_step_json(v, r, strlen(r), NOW, out, sizeof out, NULL),
           WSAUTH_RESULT_NULL_PARAMETER);
  /* Too small: the needed length is written, the buffer is not; the same call with that length succeeds. */
  memset(out, 'Z', sizeof out);
  CHECK_RC(wsauth_session_verifier_step_json(v, r, strlen(r), NOW, out, 4, &len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(len > 4 && len <= sizeof out && out[0] == 'Z');
  size_t needed = len;
  CHECK_RC(wsauth_session_verifier_step_json(v, r, strlen(r), NOW, out, needed, &len), WSAUTH_RESULT_OK);
  CHECK(len == needed);
  len = 999;
  const char *unknown = "{\"cookie\":\"x\",\"rows\":[]}";
  CHECK_RC(wsauth_session_verifier_step_json(v, unknown, strlen(unknown), NOW, out, sizeof out, &len),
           WSAUTH_RESULT_INVALID_REQUEST);
  const char *bad_row = "{\"cookie\":\"abcdefghij\",\"row\":{\"session_key\":1}}";
  CHECK_RC(wsauth_session_verifier_step_json(v, bad_row, strlen(bad_row), NOW, out, sizeof out, &len),
           WSAUTH_RESULT_INVALID_REQUEST);
  const char bad_req[] = "{\"cookie\":\"\xed\xa0\x80\"}"; /* a UTF-8-encoded surrogate */
  CHECK_RC(wsauth_session_verifier_step_json(v, bad_req, sizeof bad_req - 1, NOW, out, sizeof out, &len),
           WSAUTH_RESULT_INVALID_UTF8);
  size_t huge = (1u << 20) + 1;
  char *big = malloc(huge);
  memset(big, ' ', huge);
  CHECK_RC(wsauth_session_verifier_step_json(v, big, huge, NOW, out, sizeof out, &len),
           WSAUTH_RESULT_INPUT_TOO_LARGE);
  free(big);
  CHECK(len == 999);

  char minted[8];
  char full[256];
  const char *mreq = "{\"user_id\":\"1\",\"password\":\"x\"}";
  CHECK_RC(wsauth_session_verifier_mint(v, mreq, strlen(mreq), NOW, minted, sizeof minted, &len),
           WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(len > sizeof minted && len <= sizeof full);
  needed = len;
  CHECK_RC(wsauth_session_verifier_mint(v, mreq, strlen(mreq), NOW, full, needed, &len), WSAUTH_RESULT_OK);
  CHECK(len == needed);
  len = 999;
  CHECK_RC(wsauth_session_verifier_mint(NULL, mreq, strlen(mreq), NOW, minted, sizeof minted, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  const char *mbad = "{\"user_id\":1,\"password\":\"x\"}";
  CHECK_RC(wsauth_session_verifier_mint(v, mbad, strlen(mbad), NOW, minted, sizeof minted, &len),
           WSAUTH_RESULT_INVALID_REQUEST);
  CHECK(len == 999);

  wsauth_session_verifier_free(NULL);
  wsauth_session_verifier_free(v);
}

int main(void) {
  test_signed_cookies();
  test_db_rows();
  test_fallback_keys();
  test_errors();
  return finish("c sessions");
}
