/* Token verifier entry points, success and error paths, from real C. */
#include <pthread.h>
#include <stdint.h>

#include "check.h"

#define NOW 1750000000LL
#define SETTINGS "{\"secret\":\"c-test-signing-key-0123456789abcdef0123456789\"}"
#define OTHER_SETTINGS "{\"secret\":\"some-other-key-that-is-never-configured-0001\"}"
#define BOTH_SETTINGS                                                   \
  "{\"secret\":\"c-test-signing-key-0123456789abcdef0123456789\","    \
  "\"fallback_secrets\":[\"some-other-key-that-is-never-configured-0001\"]}"
#define MINT_REQ "{\"user_id\":\"42\",\"lifetime\":300,\"jti\":\"0123456789abcdef0123456789abcdef\"}"

static wsauth_token_verifier *new_verifier(const char *settings) {
  wsauth_token_verifier *v = NULL;
  CHECK_RC(wsauth_token_verifier_new(settings, strlen(settings), &v), WSAUTH_RESULT_OK);
  CHECK(v != NULL);
  return v;
}

/* Mints with `v` into `tok` (NUL-terminated) and returns its length. */
static size_t mint(const wsauth_token_verifier *v, const char *req, long long now, char *tok, size_t cap) {
  size_t len = 0;
  CHECK_RC(wsauth_token_verifier_mint(v, req, strlen(req), now, tok, cap - 1, &len), WSAUTH_RESULT_OK);
  CHECK(len > 0 && len < cap);
  tok[len] = '\0';
  return len;
}

/* Checks `tok` at `now`; returns a malloc'd NUL-terminated copy of the JSON. */
static char *check_json(const wsauth_token_verifier *v, const char *tok, size_t tok_len, long long now) {
  size_t cap = wsauth_token_check_json_capacity(tok_len);
  char *out = malloc(cap);
  size_t len = 0;
  CHECK_RC(wsauth_token_verifier_check_json(v, tok, tok_len, now, out, cap, &len), WSAUTH_RESULT_OK);
  CHECK(len <= cap);
  char *s = dup_out(out, len);
  free(out);
  return s;
}

static void test_library_info(void) {
  const char *version = wsauth_version();
  CHECK(version != NULL && strlen(version) > 0);
  for (unsigned code = 7000; code <= 7009; code++) {
    const char *d = wsauth_result_describe(code);
    CHECK(d != NULL && strcmp(d, "unknown result") != 0);
  }
  CHECK(strcmp(wsauth_result_describe(WSAUTH_RESULT_OK), "ok") == 0);
  CHECK(strcmp(wsauth_result_describe(0), "unknown result") == 0);
  CHECK(strcmp(wsauth_result_describe(7999), "unknown result") == 0);
}

static void test_valid_and_invalid_tokens(void) {
  wsauth_token_verifier *v = new_verifier(SETTINGS);
  char tok[4096];
  size_t n = mint(v, MINT_REQ, NOW, tok, sizeof tok);
  CHECK(strncmp(tok, "eyJ", 3) == 0);

  char *ok = check_json(v, tok, n, NOW + 1);
  CHECK(strstr(ok, "\"valid\":true") != NULL);
  CHECK(strstr(ok, "\"user_id\":\"42\"") != NULL);
  CHECK(strstr(ok, "\"token_type\":\"access\"") != NULL);
  CHECK(strstr(ok, "\"jti\":\"0123456789abcdef0123456789abcdef\"") != NULL);
  free(ok);

  /* exp == now is expired (PyJWT: exp <= now - leeway). */
  char *expired = check_json(v, tok, n, NOW + 300);
  CHECK(strstr(expired, "\"valid\":false") != NULL);
  CHECK(strstr(expired, "\"kind\":\"expired\"") != NULL);
  CHECK(strstr(expired, "\"message\":\"Token is expired\"") != NULL);
  free(expired);

  /* Another key: bad signature. */
  wsauth_token_verifier *other = new_verifier(OTHER_SETTINGS);
  char *wrong = check_json(other, tok, n, NOW + 1);
  CHECK(strstr(wrong, "\"kind\":\"bad_signature\"") != NULL);
  free(wrong);

  /* Fallback keys are opt-in: a verifier that lists the other key accepts its tokens. */
  char other_tok[4096];
  size_t on = mint(other, MINT_REQ, NOW, other_tok, sizeof other_tok);
  wsauth_token_verifier *both = new_verifier(BOTH_SETTINGS);
  char *fallback_ok = check_json(both, other_tok, on, NOW + 1);
  CHECK(strstr(fallback_ok, "\"valid\":true") != NULL);
  free(fallback_ok);
  char *no_fallback = check_json(v, other_tok, on, NOW + 1);
  CHECK(strstr(no_fallback, "\"kind\":\"bad_signature\"") != NULL);
  free(no_fallback);

  /* A flipped signature character. */
  char tampered[4096];
  memcpy(tampered, tok, n + 1);
  tampered[n - 2] = tampered[n - 2] == 'A' ? 'B' : 'A';
  char *bad = check_json(v, tampered, n, NOW + 1);
  CHECK(strstr(bad, "\"valid\":false") != NULL);
  free(bad);

  /* Garbage and the empty token are decisions, not call errors. */
  char *garbage = check_json(v, "not-a-token", 11, NOW);
  CHECK(strstr(garbage, "\"kind\":\"malformed\"") != NULL);
  free(garbage);
  char *empty = check_json(v, NULL, 0, NOW);
  CHECK(strstr(empty, "\"valid\":false") != NULL);
  free(empty);

  /* Larger than max_token_bytes (8 KiB by default): too_large. */
  size_t big_len = 64 * 1024;
  char *big = malloc(big_len);
  memset(big, 'a', big_len);
  char *too_large = check_json(v, big, big_len, NOW);
  CHECK(strstr(too_large, "\"kind\":\"too_large\"") != NULL);
  free(too_large);
  free(big);

  /* Extra claims are carried through to "claims". */
  const char *staff_req =
      "{\"user_id\":7,\"jti\":\"fedcba9876543210fedcba9876543210\",\"extra\":{\"is_staff\":true}}";
  char staff_tok[4096];
  size_t sn = mint(v, staff_req, NOW, staff_tok, sizeof staff_tok);
  char *staff = check_json(v, staff_tok, sn, NOW + 10);
  CHECK(strstr(staff, "\"valid\":true") != NULL);
  CHECK(strstr(staff, "\"user_id\":7") != NULL);
  CHECK(strstr(staff, "\"is_staff\":true") != NULL);
  free(staff);

  wsauth_token_verifier_free(both);
  wsauth_token_verifier_free(other);
  wsauth_token_verifier_free(v);
}

static void test_settings_errors(void) {
  wsauth_token_verifier *v = (wsauth_token_verifier *)0x1;
  const char *s = SETTINGS;
  /* NULL pointers. */
  CHECK_RC(wsauth_token_verifier_new(NULL, 10, &v), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_new(s, strlen(s), NULL), WSAUTH_RESULT_NULL_PARAMETER);
  /* Outputs are written only on success. */
  CHECK(v == (wsauth_token_verifier *)0x1);
  /* Invalid UTF-8, bad JSON, unknown fields, empty key, unknown algorithm, wrong types. */
  const char bad_utf8[] = "{\"secret\":\"\xff\xfe\"}";
  CHECK_RC(wsauth_token_verifier_new(bad_utf8, sizeof bad_utf8 - 1, &v), WSAUTH_RESULT_INVALID_UTF8);
  CHECK_RC(wsauth_token_verifier_new("{", 1, &v), WSAUTH_RESULT_INVALID_SETTINGS);
  CHECK_RC(wsauth_token_verifier_new("", 0, &v), WSAUTH_RESULT_INVALID_SETTINGS);
  const char *unknown = "{\"secret\":\"k\",\"secrt\":\"x\"}";
  CHECK_RC(wsauth_token_verifier_new(unknown, strlen(unknown), &v), WSAUTH_RESULT_INVALID_SETTINGS);
  const char *empty_key = "{\"secret\":\"\"}";
  CHECK_RC(wsauth_token_verifier_new(empty_key, strlen(empty_key), &v), WSAUTH_RESULT_INVALID_KEY);
  const char *empty_fallback = "{\"secret\":\"k\",\"fallback_secrets\":[\"\"]}";
  CHECK_RC(wsauth_token_verifier_new(empty_fallback, strlen(empty_fallback), &v), WSAUTH_RESULT_INVALID_KEY);
  const char *rs256 = "{\"secret\":\"k\",\"algorithm\":\"RS256\"}";
  CHECK_RC(wsauth_token_verifier_new(rs256, strlen(rs256), &v), WSAUTH_RESULT_INVALID_SETTINGS);
  CHECK(v == (wsauth_token_verifier *)0x1);

  /* The last error explains, and never echoes a value from the input. */
  const char *leaky = "{\"secret\":\"hunter2-secret-value\",\"leeway\":\"hunter2-secret-value\"}";
  CHECK_RC(wsauth_token_verifier_new(leaky, strlen(leaky), &v), WSAUTH_RESULT_INVALID_SETTINGS);
  char msg[512];
  size_t msg_len = 0;
  CHECK_RC(wsauth_last_error(msg, sizeof msg, &msg_len), WSAUTH_RESULT_OK);
  CHECK(msg_len > 0);
  CHECK(out_has(msg, msg_len, "leeway") || out_has(msg, msg_len, "u32"));
  CHECK(!out_has(msg, msg_len, "hunter2"));
  /* Reading it does not clear it; a short buffer gets the needed length. */
  size_t first_len = msg_len;
  CHECK_RC(wsauth_last_error(msg, 1, &msg_len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(msg_len == first_len);
  CHECK_RC(wsauth_last_error(msg, sizeof msg, &msg_len), WSAUTH_RESULT_OK);
  CHECK(msg_len == first_len);
  CHECK_RC(wsauth_last_error(msg, sizeof msg, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  /* A successful call clears it. */
  wsauth_token_verifier *ok = NULL;
  CHECK_RC(wsauth_token_verifier_new("{\"secret\":\"k\"}", 14, &ok), WSAUTH_RESULT_OK);
  CHECK_RC(wsauth_last_error(msg, sizeof msg, &msg_len), WSAUTH_RESULT_OK);
  CHECK(msg_len == 0);
  wsauth_token_verifier_free(ok);
  /* A failure without a message of its own still leaves one (the result's description). */
  CHECK_RC(wsauth_token_verifier_new(NULL, 3, &ok), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_last_error(msg, sizeof msg, &msg_len), WSAUTH_RESULT_OK);
  CHECK(out_has(msg, msg_len, "NULL"));

  /* Oversized settings document. */
  size_t huge = (1u << 20) + 1;
  char *big = malloc(huge);
  memset(big, ' ', huge);
  CHECK_RC(wsauth_token_verifier_new(big, huge, &v), WSAUTH_RESULT_INPUT_TOO_LARGE);
  free(big);
  CHECK(v == (wsauth_token_verifier *)0x1);
}

static void test_call_errors(void) {
  wsauth_token_verifier *v = new_verifier(SETTINGS);
  char tok[4096];
  size_t n = mint(v, MINT_REQ, NOW, tok, sizeof tok);
  char out[8192];
  size_t len = 12345;

  CHECK_RC(wsauth_token_verifier_check_json(NULL, tok, n, NOW, out, sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_json(v, NULL, n, NOW, out, sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_json(v, tok, n, NOW, NULL, sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_json(v, tok, n, NOW, out, sizeof out, NULL),
           WSAUTH_RESULT_NULL_PARAMETER);
  const char bad_utf8[] = "eyJ\xc3\x28.x.y";
  CHECK_RC(wsauth_token_verifier_check_json(v, bad_utf8, sizeof bad_utf8 - 1, NOW, out, sizeof out, &len),
           WSAUTH_RESULT_INVALID_UTF8);
  CHECK(len == 12345);

  /* Too small an output buffer: the buffer is untouched, `len` receives the needed length. */
  memset(out, 'Z', sizeof out);
  CHECK_RC(wsauth_token_verifier_check_json(v, tok, n, NOW + 1, out, 10, &len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(len > 10 && len <= wsauth_token_check_json_capacity(n));
  CHECK(out[0] == 'Z' && out[9] == 'Z');
  size_t needed = len;
  len = 12345;
  CHECK_RC(wsauth_token_verifier_check_json(v, tok, n, NOW + 1, NULL, 0, &len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(len == needed);
  /* Asking with zero capacity, then with exactly the needed length, works. */
  CHECK_RC(wsauth_token_verifier_check_json(v, tok, n, NOW + 1, out, needed, &len), WSAUTH_RESULT_OK);
  CHECK(len == needed);

  /* The capacity bound holds. */
  CHECK_RC(wsauth_token_verifier_check_json(v, tok, n, NOW + 1, out, sizeof out, &len), WSAUTH_RESULT_OK);
  CHECK(len > 0 && len <= wsauth_token_check_json_capacity(n));

  /* Mint errors. */
  char minted[16];
  size_t mlen = 777;
  CHECK_RC(wsauth_token_verifier_mint(NULL, MINT_REQ, strlen(MINT_REQ), NOW, tok, sizeof tok, &mlen),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_mint(v, MINT_REQ, strlen(MINT_REQ), NOW, minted, sizeof minted, &mlen),
           WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(mlen > sizeof minted && mlen < sizeof tok);
  mlen = 777;
  const char *no_jti = "{\"user_id\":\"1\"}";
  CHECK_RC(wsauth_token_verifier_mint(v, no_jti, strlen(no_jti), NOW, tok, sizeof tok, &mlen),
           WSAUTH_RESULT_INVALID_REQUEST);
  const char *obj_uid = "{\"user_id\":{},\"jti\":\"x\"}";
  CHECK_RC(wsauth_token_verifier_mint(v, obj_uid, strlen(obj_uid), NOW, tok, sizeof tok, &mlen),
           WSAUTH_RESULT_INVALID_REQUEST);
  const char bad_req[] = "{\"user_id\":\"\xff\",\"jti\":\"x\"}";
  CHECK_RC(wsauth_token_verifier_mint(v, bad_req, sizeof bad_req - 1, NOW, tok, sizeof tok, &mlen),
           WSAUTH_RESULT_INVALID_UTF8);
  CHECK(mlen == 777);

  /* free(NULL) is a no-op. */
  wsauth_token_verifier_free(NULL);
  wsauth_token_verifier_free(v);
}

/* Verifiers are immutable: one handle serves many threads. */
struct thread_arg {
  const wsauth_token_verifier *v;
  const char *tok;
  size_t len;
  int ok;
};

static void *thread_main(void *p) {
  struct thread_arg *a = p;
  char out[8192];
  size_t len = 0;
  a->ok = 1;
  for (int i = 0; i < 200; i++) {
    if (wsauth_token_verifier_check_json(a->v, a->tok, a->len, NOW + 1, out, sizeof out, &len) !=
            WSAUTH_RESULT_OK ||
        !out_has(out, len, "\"valid\":true")) {
      a->ok = 0;
    }
  }
  return NULL;
}

static void test_shared_between_threads(void) {
  wsauth_token_verifier *v = new_verifier(SETTINGS);
  char tok[4096];
  size_t n = mint(v, MINT_REQ, NOW, tok, sizeof tok);
  pthread_t threads[4];
  struct thread_arg args[4];
  for (int i = 0; i < 4; i++) {
    args[i] = (struct thread_arg){v, tok, n, 0};
    CHECK(pthread_create(&threads[i], NULL, thread_main, &args[i]) == 0);
  }
  for (int i = 0; i < 4; i++) {
    CHECK(pthread_join(threads[i], NULL) == 0);
    CHECK(args[i].ok == 1);
  }
  wsauth_token_verifier_free(v);
}

static void test_fast_check(void) {
  wsauth_token_verifier *v = new_verifier(SETTINGS);
  char tok[4096];
  size_t n = mint(v, MINT_REQ, NOW, tok, sizeof tok);
  uint32_t kind = 12345;
  CHECK_RC(wsauth_token_verifier_check(v, tok, n, NOW + 1, &kind), WSAUTH_RESULT_OK);
  CHECK(kind == WSAUTH_KIND_NONE);
  CHECK(strcmp(wsauth_error_kind_name(kind), "valid") == 0);
  CHECK_RC(wsauth_token_verifier_check(v, tok, n, NOW + 300, &kind), WSAUTH_RESULT_OK);
  CHECK(kind == WSAUTH_KIND_EXPIRED);
  CHECK(strcmp(wsauth_error_kind_name(kind), "expired") == 0);
  CHECK_RC(wsauth_token_verifier_check(v, "a.b", 3, NOW, &kind), WSAUTH_RESULT_OK);
  CHECK(kind == WSAUTH_KIND_MALFORMED);
  tok[n - 3] = tok[n - 3] == 'x' ? 'y' : 'x';
  CHECK_RC(wsauth_token_verifier_check(v, tok, n, NOW + 1, &kind), WSAUTH_RESULT_OK);
  CHECK(kind == WSAUTH_KIND_BAD_SIGNATURE || kind == WSAUTH_KIND_MALFORMED);
  CHECK_RC(wsauth_token_verifier_check(v, tok, 100000, NOW, &kind), WSAUTH_RESULT_OK);
  CHECK(kind == WSAUTH_KIND_TOO_LARGE); /* never read: the length alone decides */
  CHECK(strcmp(wsauth_error_kind_name(WSAUTH_KIND_TOO_LARGE), "too_large") == 0);
  CHECK(strcmp(wsauth_error_kind_name(16), "user_inactive") == 0);
  CHECK(strcmp(wsauth_error_kind_name(WSAUTH_KIND_OTHER), "unknown") == 0);
  /* Call errors leave the output alone. */
  kind = 777;
  CHECK_RC(wsauth_token_verifier_check(NULL, tok, n, NOW, &kind), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check(v, tok, n, NOW, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check(v, NULL, 5, NOW, &kind), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check(v, "\xff.a.b", 5, NOW, &kind), WSAUTH_RESULT_INVALID_UTF8);
  CHECK(kind == 777);
  wsauth_token_verifier_free(v);
}

/* Checks `tok` with wsauth_token_verifier_check_result into `res`; returns
 * the text output, NUL-terminated (static buffer). */
static const char *check_result(const wsauth_token_verifier *v, const char *tok, size_t tok_len, long long now,
                                wsauth_token_check *res) {
  static char text[1024];
  size_t len = 99999;
  CHECK_RC(wsauth_token_verifier_check_result(v, tok, tok_len, now, res, text, sizeof text - 1, &len),
           WSAUTH_RESULT_OK);
  CHECK(len < sizeof text);
  text[len < sizeof text ? len : 0] = '\0';
  return text;
}

static void test_check_result(void) {
  wsauth_token_verifier *v = new_verifier(SETTINGS);
  char tok[4096];
  wsauth_token_check res;

  /* "42": a string holding a canonical decimal integer. */
  size_t n = mint(v, MINT_REQ, NOW, tok, sizeof tok);
  const char *text = check_result(v, tok, n, NOW + 1, &res);
  CHECK(res.kind == WSAUTH_KIND_NONE);
  CHECK(res.user_id_type == WSAUTH_USER_ID_DECIMAL_STR);
  CHECK(res.user_id_int == 42);
  CHECK(res.exp == NOW + 300);
  CHECK(strcmp(text, "") == 0);

  /* Other strings: the UTF-8 text. */
  n = mint(v, "{\"user_id\":\"042\",\"jti\":\"0123456789abcdef0123456789abcdef\"}", NOW, tok, sizeof tok);
  text = check_result(v, tok, n, NOW + 1, &res);
  CHECK(res.kind == WSAUTH_KIND_NONE && res.user_id_type == WSAUTH_USER_ID_STR);
  CHECK(strcmp(text, "042") == 0);
  n = mint(v, "{\"user_id\":\"Zo\\u00eb\",\"jti\":\"0123456789abcdef0123456789abcdef\"}", NOW, tok, sizeof tok);
  text = check_result(v, tok, n, NOW + 1, &res);
  CHECK(res.user_id_type == WSAUTH_USER_ID_STR);
  CHECK(strcmp(text, "Zo\xc3\xab") == 0);

  /* An integer. */
  n = mint(v, "{\"user_id\":-7,\"jti\":\"0123456789abcdef0123456789abcdef\"}", NOW, tok, sizeof tok);
  text = check_result(v, tok, n, NOW + 1, &res);
  CHECK(res.user_id_type == WSAUTH_USER_ID_INT && res.user_id_int == -7);
  CHECK(strcmp(text, "") == 0);

  /* Anything else: its JSON, as check_json writes it. */
  n = mint(v, "{\"user_id\":true,\"jti\":\"0123456789abcdef0123456789abcdef\"}", NOW, tok, sizeof tok);
  text = check_result(v, tok, n, NOW + 1, &res);
  CHECK(res.user_id_type == WSAUTH_USER_ID_JSON);
  CHECK(strcmp(text, "true") == 0);
  n = mint(v, "{\"user_id\":1.5,\"jti\":\"0123456789abcdef0123456789abcdef\"}", NOW, tok, sizeof tok);
  text = check_result(v, tok, n, NOW + 1, &res);
  CHECK(res.user_id_type == WSAUTH_USER_ID_JSON);
  CHECK(strcmp(text, "1.5") == 0);
  char *json = check_json(v, tok, n, NOW + 1);
  CHECK(strstr(json, "\"user_id\":1.5,") != NULL);
  free(json);

  /* Rejections: the kind and SimpleJWT's message. */
  n = mint(v, MINT_REQ, NOW, tok, sizeof tok);
  text = check_result(v, tok, n, NOW + 300, &res);
  CHECK(res.kind == WSAUTH_KIND_EXPIRED);
  CHECK(strcmp(text, "Token is expired") == 0);
  CHECK(res.exp == 0 && res.user_id_type == WSAUTH_USER_ID_ABSENT);
  text = check_result(v, "not-a-token", 11, NOW, &res);
  CHECK(res.kind == WSAUTH_KIND_MALFORMED);
  CHECK(strcmp(text, "Token is invalid") == 0);
  text = check_result(v, NULL, 0, NOW, &res);
  CHECK(res.kind == WSAUTH_KIND_MALFORMED);
  /* Larger than max_token_bytes: decided by the length, never read. */
  text = check_result(v, tok, 100000, NOW, &res);
  CHECK(res.kind == WSAUTH_KIND_TOO_LARGE);
  CHECK(strcmp(text, "Token is too large") == 0);

  /* Call errors leave the outputs alone. */
  char out[64];
  size_t len = 777;
  wsauth_token_check untouched = {12345, 6, 7, 8};
  res = untouched;
  CHECK_RC(wsauth_token_verifier_check_result(NULL, tok, n, NOW, &res, out, sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result(v, NULL, n, NOW, &res, out, sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result(v, tok, n, NOW, NULL, out, sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result(v, tok, n, NOW, &res, NULL, sizeof out, &len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result(v, tok, n, NOW, &res, out, sizeof out, NULL),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result(v, "\xff.a.b", 5, NOW, &res, out, sizeof out, &len),
           WSAUTH_RESULT_INVALID_UTF8);
  CHECK(memcmp(&res, &untouched, sizeof res) == 0);
  CHECK(len == 777);

  /* A short text buffer: the length needed, nothing else written. */
  n = mint(v, "{\"user_id\":\"alice@example.com\",\"jti\":\"0123456789abcdef0123456789abcdef\"}", NOW, tok,
           sizeof tok);
  memset(out, '#', sizeof out);
  CHECK_RC(wsauth_token_verifier_check_result(v, tok, n, NOW + 1, &res, out, 4, &len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(len == strlen("alice@example.com"));
  CHECK(out[0] == '#');
  CHECK(memcmp(&res, &untouched, sizeof res) == 0);
  CHECK_RC(wsauth_token_verifier_check_result(v, tok, n, NOW + 1, &res, NULL, 0, &len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(len == strlen("alice@example.com"));
  CHECK_RC(wsauth_token_verifier_check_result(v, tok, n, NOW + 1, &res, out, len, &len), WSAUTH_RESULT_OK);
  CHECK(res.user_id_type == WSAUTH_USER_ID_STR && memcmp(out, "alice@example.com", len) == 0);
  /* A message that does not fit either. */
  res = untouched;
  CHECK_RC(wsauth_token_verifier_check_result(v, tok, n, NOW + 300, &res, out, 3, &len),
           WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(len == strlen("Token is expired"));
  CHECK(memcmp(&res, &untouched, sizeof res) == 0);
  /* The claims alone: check_json's "claims" member, byte for byte. */
  {
    size_t mn = mint(v, "{\"user_id\":\"Zo\\u00eb\",\"jti\":\"0123456789abcdef0123456789abcdef\",\"extra\":{\"is_staff\":true}}",
                     NOW, tok, sizeof tok);
    char *whole = check_json(v, tok, mn, NOW + 1);
    char claims[4096];
    size_t cl = 0;
    CHECK_RC(wsauth_token_verifier_claims_json(v, tok, mn, NOW + 1, claims, sizeof claims, &cl), WSAUTH_RESULT_OK);
    char *only = dup_out(claims, cl);
    char *member = strstr(whole, "\"claims\":");
    CHECK(member != NULL && strncmp(member + 9, only, cl) == 0 && strcmp(member + 9 + cl, "}") == 0);
    CHECK(only[0] == '{' && strstr(only, "\"is_staff\":true") != NULL);
    free(only);
    free(whole);
    /* A short buffer: the length needed, nothing written. */
    memset(out, '#', sizeof out);
    CHECK_RC(wsauth_token_verifier_claims_json(v, tok, mn, NOW + 1, out, 8, &len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == cl && out[0] == '#');
    CHECK_RC(wsauth_token_verifier_claims_json(v, tok, mn, NOW + 1, NULL, 0, &len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
    CHECK(len == cl);
    /* A token it rejects: no claims, the kind in the last error. */
    len = 777;
    CHECK_RC(wsauth_token_verifier_claims_json(v, tok, mn, NOW + 300, out, sizeof out, &len),
             WSAUTH_RESULT_INVALID_REQUEST);
    CHECK(len == 777 && out[0] == '#');
    char err[256];
    size_t el = 0;
    CHECK_RC(wsauth_last_error(err, sizeof err, &el), WSAUTH_RESULT_OK);
    CHECK(out_has(err, el, "expired"));
    CHECK_RC(wsauth_token_verifier_claims_json(v, tok, 100000, NOW, out, sizeof out, &len), WSAUTH_RESULT_INVALID_REQUEST);
    CHECK_RC(wsauth_last_error(err, sizeof err, &el), WSAUTH_RESULT_OK);
    CHECK(out_has(err, el, "too_large"));
    CHECK_RC(wsauth_token_verifier_claims_json(v, "a.b", 3, NOW, out, sizeof out, &len), WSAUTH_RESULT_INVALID_REQUEST);
    /* Call errors. */
    CHECK_RC(wsauth_token_verifier_claims_json(NULL, tok, mn, NOW, out, sizeof out, &len), WSAUTH_RESULT_NULL_PARAMETER);
    CHECK_RC(wsauth_token_verifier_claims_json(v, NULL, mn, NOW, out, sizeof out, &len), WSAUTH_RESULT_NULL_PARAMETER);
    CHECK_RC(wsauth_token_verifier_claims_json(v, tok, mn, NOW, NULL, sizeof out, &len), WSAUTH_RESULT_NULL_PARAMETER);
    CHECK_RC(wsauth_token_verifier_claims_json(v, tok, mn, NOW, out, sizeof out, NULL), WSAUTH_RESULT_NULL_PARAMETER);
    CHECK_RC(wsauth_token_verifier_claims_json(v, "\xff.a.b", 5, NOW, out, sizeof out, &len), WSAUTH_RESULT_INVALID_UTF8);
    CHECK(len == 777);
  }
  /* Nothing to write needs no buffer. */
  n = mint(v, MINT_REQ, NOW, tok, sizeof tok);
  CHECK_RC(wsauth_token_verifier_check_result(v, tok, n, NOW + 1, &res, NULL, 0, &len), WSAUTH_RESULT_OK);
  CHECK(len == 0 && res.user_id_type == WSAUTH_USER_ID_DECIMAL_STR && res.user_id_int == 42);
  wsauth_token_verifier_free(v);
}

/* RFC 4648 base64url without padding, decoded independently of the library:
 * the oracle for the payload the check hands out. Returns the length, or
 * (size_t)-1 for a character outside the alphabet. */
static size_t b64url_decode(const char *in, size_t n, unsigned char *out) {
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  unsigned acc = 0;
  int bits = 0;
  size_t len = 0;
  for (size_t i = 0; i < n; i++) {
    const char *p = memchr(alphabet, in[i], 64);
    if (p == NULL || in[i] == '\0') return (size_t)-1;
    acc = (acc << 6) | (unsigned)(p - alphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[len++] = (unsigned char)((acc >> bits) & 0xff);
    }
  }
  return len;
}

/* The decoded payload segment of `tok` (between its two dots) into `out`. */
static size_t payload_of(const char *tok, size_t n, unsigned char *out) {
  const char *first = memchr(tok, '.', n);
  CHECK(first != NULL);
  const char *second = memchr(first + 1, '.', n - (size_t)(first + 1 - tok));
  CHECK(second != NULL);
  return b64url_decode(first + 1, (size_t)(second - first - 1), out);
}

static void test_check_result_payload(void) {
  wsauth_token_verifier *v = new_verifier(SETTINGS);
  char tok[4096];
  unsigned char want[4096];
  char text[256], payload[4096];
  size_t text_len = 0, payload_len = 0;
  wsauth_token_check res;

  /* A valid token: the decision as check_result gives it, and the payload
   * segment, decoded, byte for byte. */
  size_t n = mint(v, "{\"user_id\":\"Zo\\u00eb\",\"jti\":\"0123456789abcdef0123456789abcdef\",\"extra\":{\"is_staff\":true}}",
                  NOW, tok, sizeof tok);
  size_t want_len = payload_of(tok, n, want);
  CHECK(want_len > 2 && want_len < n);
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 1, &res, text, sizeof text, &text_len, payload,
                                                      sizeof payload, &payload_len),
           WSAUTH_RESULT_OK);
  CHECK(res.kind == WSAUTH_KIND_NONE && res.user_id_type == WSAUTH_USER_ID_STR && res.exp == NOW + 300);
  CHECK(text_len == 4 && memcmp(text, "Zo\xc3\xab", 4) == 0);
  CHECK(payload_len == want_len && memcmp(payload, want, want_len) == 0);
  CHECK(payload[0] == '{' && out_has(payload, payload_len, "\"is_staff\":true"));
  {
    wsauth_token_check plain;
    const char *t = check_result(v, tok, n, NOW + 1, &plain);
    CHECK(memcmp(&plain, &res, sizeof res) == 0 && strcmp(t, "Zo\xc3\xab") == 0);
  }
  /* token_len bytes always suffice; the exact length too. */
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 1, &res, text, sizeof text, &text_len, payload,
                                                      want_len, &payload_len),
           WSAUTH_RESULT_OK);
  CHECK(payload_len == want_len && memcmp(payload, want, want_len) == 0);

  /* A payload that does not fit: still decided, its length given, the
   * buffer untouched. */
  memset(payload, '#', sizeof payload);
  memset(&res, 0, sizeof res);
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 1, &res, text, sizeof text, &text_len, payload,
                                                      want_len - 1, &payload_len),
           WSAUTH_RESULT_OK);
  CHECK(res.kind == WSAUTH_KIND_NONE && res.user_id_type == WSAUTH_USER_ID_STR);
  CHECK(payload_len == want_len && payload[0] == '#');
  payload_len = 0;
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 1, &res, text, sizeof text, &text_len, NULL, 0,
                                                      &payload_len),
           WSAUTH_RESULT_OK);
  CHECK(payload_len == want_len);

  /* Rejected tokens: no payload (length 0), nothing written. */
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 300, &res, text, sizeof text, &text_len, payload,
                                                      sizeof payload, &payload_len),
           WSAUTH_RESULT_OK);
  CHECK(res.kind == WSAUTH_KIND_EXPIRED && payload_len == 0 && payload[0] == '#');
  CHECK(text_len == strlen("Token is expired") && memcmp(text, "Token is expired", text_len) == 0);
  payload_len = 777;
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, 100000, NOW, &res, text, sizeof text, &text_len, payload,
                                                      sizeof payload, &payload_len),
           WSAUTH_RESULT_OK);
  CHECK(res.kind == WSAUTH_KIND_TOO_LARGE && payload_len == 0 && payload[0] == '#');
  payload_len = 777;
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, "not-a-token", 11, NOW, &res, text, sizeof text, &text_len,
                                                      payload, sizeof payload, &payload_len),
           WSAUTH_RESULT_OK);
  CHECK(res.kind == WSAUTH_KIND_MALFORMED && payload_len == 0 && payload[0] == '#');
  {
    wsauth_token_verifier *other = new_verifier(OTHER_SETTINGS);
    payload_len = 777;
    CHECK_RC(wsauth_token_verifier_check_result_payload(other, tok, n, NOW + 1, &res, text, sizeof text, &text_len,
                                                        payload, sizeof payload, &payload_len),
             WSAUTH_RESULT_OK);
    CHECK(res.kind == WSAUTH_KIND_BAD_SIGNATURE && payload_len == 0 && payload[0] == '#');
    wsauth_token_verifier_free(other);
  }

  /* Call errors (and a text that does not fit) write neither output. */
  wsauth_token_check untouched = {12345, 6, 7, 8};
  res = untouched;
  payload_len = 777;
  text_len = 777;
  CHECK_RC(wsauth_token_verifier_check_result_payload(NULL, tok, n, NOW + 1, &res, text, sizeof text, &text_len,
                                                      payload, sizeof payload, &payload_len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, NULL, n, NOW + 1, &res, text, sizeof text, &text_len, payload,
                                                      sizeof payload, &payload_len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 1, NULL, text, sizeof text, &text_len, payload,
                                                      sizeof payload, &payload_len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 1, &res, NULL, sizeof text, &text_len, payload,
                                                      sizeof payload, &payload_len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 1, &res, text, sizeof text, NULL, payload,
                                                      sizeof payload, &payload_len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 1, &res, text, sizeof text, &text_len, NULL,
                                                      sizeof payload, &payload_len),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 1, &res, text, sizeof text, &text_len, payload,
                                                      sizeof payload, NULL),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, "\xff.a.b", 5, NOW, &res, text, sizeof text, &text_len,
                                                      payload, sizeof payload, &payload_len),
           WSAUTH_RESULT_INVALID_UTF8);
  CHECK(memcmp(&res, &untouched, sizeof res) == 0);
  CHECK(payload_len == 777 && text_len == 777 && payload[0] == '#');
  CHECK_RC(wsauth_token_verifier_check_result_payload(v, tok, n, NOW + 1, &res, text, 2, &text_len, payload,
                                                      sizeof payload, &payload_len),
           WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(text_len == 4 && payload_len == 777 && payload[0] == '#');
  CHECK(memcmp(&res, &untouched, sizeof res) == 0);
  wsauth_token_verifier_free(v);

  /* A payload larger than any fixed buffer (a verifier taking 64 KiB
   * tokens): on the heap, the same bytes. */
  {
    wsauth_token_verifier *big = new_verifier(
        "{\"secret\":\"c-test-signing-key-0123456789abcdef0123456789\",\"max_token_bytes\":65536}");
    /* extra values are at most 256 bytes: many of them. */
    size_t req_cap = 32768;
    char *req = malloc(req_cap);
    size_t at = (size_t)snprintf(req, req_cap, "{\"user_id\":\"1\",\"jti\":\"0123456789abcdef0123456789abcdef\",\"extra\":{");
    for (int i = 0; i < 60; i++) {
      at += (size_t)snprintf(req + at, req_cap - at, "%s\"k%d\":\"", i ? "," : "", i);
      memset(req + at, 'a' + i % 26, 250);
      at += 250;
      req[at++] = '"';
    }
    memcpy(req + at, "}}", 3);
    size_t big_cap = 65536;
    char *big_tok = malloc(big_cap);
    unsigned char *big_want = malloc(big_cap);
    char *big_payload = malloc(big_cap);
    size_t bn = 0;
    CHECK_RC(wsauth_token_verifier_mint(big, req, strlen(req), NOW, big_tok, big_cap, &bn), WSAUTH_RESULT_OK);
    CHECK(bn > 16384);
    size_t bw = payload_of(big_tok, bn, big_want);
    CHECK(bw > 12288 && bw < bn);
    CHECK_RC(wsauth_token_verifier_check_result_payload(big, big_tok, bn, NOW + 1, &res, text, sizeof text, &text_len,
                                                        big_payload, bn, &payload_len),
             WSAUTH_RESULT_OK);
    CHECK(res.kind == WSAUTH_KIND_NONE && res.user_id_type == WSAUTH_USER_ID_DECIMAL_STR && res.user_id_int == 1);
    CHECK(payload_len == bw && memcmp(big_payload, big_want, bw) == 0);
    free(big_payload);
    free(big_want);
    free(big_tok);
    free(req);
    wsauth_token_verifier_free(big);
  }
}

int main(void) {
  test_library_info();
  test_valid_and_invalid_tokens();
  test_settings_errors();
  test_call_errors();
  test_fast_check();
  test_check_result();
  test_check_result_payload();
  test_shared_between_threads();
  return finish("c tokens");
}
