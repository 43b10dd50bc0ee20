#define _POSIX_C_SOURCE 200809L
/* Authenticator, handshake and connection entry points from real C: the
 * reference app's routes, lookups answered from a table in this file. */
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

#define NOW 1750000000LL
#define JWT_SECRET "c-test-signing-key-0123456789abcdef0123456789"
#define DJANGO_SECRET "c-test-django-secret-key-0123456789abcdefghijklmnop"
#define PASSWORD "pbkdf2_sha256$1000000$c0salt$Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="

static const char *CONFIG =
    "{\"jwt\":{\"secret\":\"" JWT_SECRET "\"},"
    "\"users\":{\"source\":\"directory\"},"
    "\"session\":{\"engine\":\"signed_cookies\",\"secret\":\"" DJANGO_SECRET "\"},"
    "\"credentials\":{\"carriers\":[\"subprotocol\",\"header\",\"query\",\"session\",\"message\"]},"
    "\"origins\":{\"allowed\":[\"http://localhost:*\"]},"
    "\"routes\":["
    "{\"name\":\"chat\",\"path\":\"/ws/chat/<room>/\",\"requirement\":\"anonymous\",\"auth_message\":false},"
    "{\"name\":\"admin_chat\",\"path\":\"/ws/admin/chat/\",\"requirement\":\"staff\",\"auth_message\":false},"
    "{\"name\":\"receipts\",\"path\":\"/ws/receipts/<id>/\",\"requirement\":{\"owner\":\"id\"},\"auth_message\":false},"
    "{\"name\":\"conversations\",\"path\":\"/ws/conversations/<id>/\",\"requirement\":{\"member\":\"id\"},"
    "\"auth_message\":false},"
    "{\"name\":\"inbox\",\"path\":\"/ws/inbox/\",\"requirement\":\"authenticated\"}"
    "]}";

/* The user table the host answers from. */
struct user {
  const char *pk;
  bool active, staff, superuser;
};
static const struct user USERS[] = {
    {"42", true, true, false}, /* staff */
    {"7", true, false, false}, /* customer */
    {"9", false, false, false}, /* inactive */
};

static wsauth_token_verifier *minter;

static char *mint(const char *user_id, long long now) {
  char req[256];
  snprintf(req, sizeof req, "{\"user_id\":\"%s\",\"jti\":\"0123456789abcdef0123456789abcdef\"}", user_id);
  char buf[2048];
  size_t len = 0;
  CHECK_RC(wsauth_token_verifier_mint(minter, req, strlen(req), now, buf, sizeof buf, &len), WSAUTH_RESULT_OK);
  return dup_out(buf, len);
}

static wsauth_authenticator *new_authenticator(const char *config) {
  wsauth_authenticator *a = NULL;
  wsauth_result rc = wsauth_authenticator_new(config, strlen(config), &a);
  CHECK_RC(rc, WSAUTH_RESULT_OK);
  if (rc != WSAUTH_RESULT_OK) {
    char msg[512];
    size_t len = 0;
    if (wsauth_last_error(msg, sizeof msg - 1, &len) == WSAUTH_RESULT_OK) {
      msg[len] = '\0';
      fprintf(stderr, "  last error: %s\n", msg);
    }
  }
  CHECK(a != NULL);
  return a;
}

static wsauth_handshake *start(const wsauth_authenticator *a, const char *path, const char *query,
                               const char *origin, const char *extra_name, const char *extra_value) {
  wsauth_header headers[3];
  size_t n = 0;
  headers[n++] = (wsauth_header){"host", 4, "localhost:8000", 14};
  if (origin != NULL) {
    headers[n++] = (wsauth_header){"Origin", 6, origin, strlen(origin)};
  }
  if (extra_name != NULL) {
    headers[n++] = (wsauth_header){extra_name, strlen(extra_name), extra_value, strlen(extra_value)};
  }
  wsauth_handshake *h = NULL;
  CHECK_RC(wsauth_authenticator_start(a, path, strlen(path), query, strlen(query), headers, n, "127.0.0.1", 9,
                                      NOW, &h),
           WSAUTH_RESULT_OK);
  CHECK(h != NULL);
  return h;
}

/* Answers lookups: users from USERS; access allowed when `allow`. */
static void drive(wsauth_handshake *h, int allow) {
  for (int i = 0; i < 8; i++) {
    uint32_t step = 99;
    CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
    if (step == WSAUTH_STEP_DONE) {
      return;
    }
    char key[256];
    size_t key_len = 0;
    CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_KEY, key, sizeof key - 1, &key_len), WSAUTH_RESULT_OK);
    key[key_len] = '\0';
    if (step == WSAUTH_STEP_USER) {
      const struct user *found = NULL;
      for (size_t u = 0; u < sizeof USERS / sizeof USERS[0]; u++) {
        if (strcmp(USERS[u].pk, key) == 0) {
          found = &USERS[u];
        }
      }
      if (found == NULL) {
        CHECK_RC(wsauth_handshake_answer_none(h), WSAUTH_RESULT_OK);
      } else {
        CHECK_RC(wsauth_handshake_answer_user(h, found->pk, strlen(found->pk), PASSWORD, strlen(PASSWORD),
                                              found->active, found->staff, found->superuser),
                 WSAUTH_RESULT_OK);
      }
    } else if (step == WSAUTH_STEP_OWNER || step == WSAUTH_STEP_MEMBER) {
      CHECK_RC(allow < 0 ? wsauth_handshake_answer_failed(h) : wsauth_handshake_answer_bool(h, allow != 0),
               WSAUTH_RESULT_OK);
    } else {
      CHECK(0 && "unexpected step");
      return;
    }
  }
  CHECK(0 && "too many steps");
}

/* The decision's action and code; the JSON form into `json` when non-NULL. */
static uint32_t decide(wsauth_handshake *h, int allow, uint32_t *code, char **json) {
  drive(h, allow);
  uint32_t action = 0;
  wsauth_close close;
  CHECK_RC(wsauth_handshake_decision(h, &action, &close), WSAUTH_RESULT_OK);
  CHECK(close.reason_len < sizeof close.reason && close.reason[close.reason_len] == '\0');
  *code = close.code;
  if (json != NULL) {
    char buf[4096];
    size_t len = 0;
    CHECK_RC(wsauth_handshake_decision_json(h, buf, sizeof buf, &len), WSAUTH_RESULT_OK);
    *json = dup_out(buf, len);
  }
  return action;
}

static void test_config_errors(void) {
  wsauth_authenticator *a = (wsauth_authenticator *)0x1;
  CHECK_RC(wsauth_authenticator_new(NULL, 3, &a), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_authenticator_new("{}", 2, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_authenticator_new("{", 1, &a), WSAUTH_RESULT_INVALID_SETTINGS);
  CHECK_RC(wsauth_authenticator_new("{}", 2, &a), WSAUTH_RESULT_INVALID_SETTINGS);
  char msg[512];
  size_t len = 0;
  CHECK_RC(wsauth_last_error(msg, sizeof msg, &len), WSAUTH_RESULT_OK);
  CHECK(out_has(msg, len, "jwt.secret"));
  const char *unknown = "{\"jwt\":{\"secret\":\"k\"},\"routez\":[]}";
  CHECK_RC(wsauth_authenticator_new(unknown, strlen(unknown), &a), WSAUTH_RESULT_INVALID_SETTINGS);
  const char *unset_env = "{\"jwt\":{\"secret\":{\"env\":\"WSAUTH_C_TEST_SURELY_UNSET\"}}}";
  CHECK_RC(wsauth_authenticator_new(unset_env, strlen(unset_env), &a), WSAUTH_RESULT_INVALID_SETTINGS);
  const char bad_utf8[] = "{\"jwt\":{\"secret\":\"\xff\"}}";
  CHECK_RC(wsauth_authenticator_new(bad_utf8, sizeof bad_utf8 - 1, &a), WSAUTH_RESULT_INVALID_UTF8);
  CHECK(a == (wsauth_authenticator *)0x1);

  /* Secrets from the environment and from a file. */
  setenv("WSAUTH_C_TEST_SECRET", JWT_SECRET, 1);
#define ONE_ROUTE ",\"routes\":[{\"name\":\"chat\",\"path\":\"/ws/chat/<room>/\",\"requirement\":\"anonymous\"}]}"
  const char *env = "{\"jwt\":{\"secret\":{\"env\":\"WSAUTH_C_TEST_SECRET\"}}" ONE_ROUTE;
  wsauth_authenticator *from_env = new_authenticator(env);
  char path[] = "/tmp/wsauth-c-test-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  CHECK(write(fd, JWT_SECRET "\n", strlen(JWT_SECRET) + 1) == (ssize_t)strlen(JWT_SECRET) + 1);
  close(fd);
  char file_cfg[256];
  snprintf(file_cfg, sizeof file_cfg, "{\"jwt\":{\"secret\":{\"file\":\"%s\"}}" ONE_ROUTE, path);
  wsauth_authenticator *from_file = new_authenticator(file_cfg);
  unlink(path);
  /* Both verify a token signed with the secret (claims mode: no lookups). */
  char *tok = mint("7", NOW);
  char query[2048];
  snprintf(query, sizeof query, "token=%s", tok);
  wsauth_authenticator *both[2] = {from_env, from_file};
  for (int i = 0; i < 2; i++) {
    wsauth_handshake *h = start(both[i], "/ws/chat/lobby/", query, NULL, NULL, NULL);
    uint32_t code = 0;
    char *json = NULL;
    CHECK(decide(h, 1, &code, &json) == WSAUTH_ACTION_ACCEPT);
    CHECK(strstr(json, "\"user_id\":\"7\"") != NULL);
    free(json);
    wsauth_handshake_free(h);
  }
  free(tok);
  wsauth_authenticator_free(from_env);
  wsauth_authenticator_free(from_file);
  wsauth_authenticator_free(NULL);
}

static void test_routes(void) {
  wsauth_authenticator *a = new_authenticator(CONFIG);
  char *staff = mint("42", NOW);
  char *customer = mint("7", NOW);
  char *inactive = mint("9", NOW);
  char *stranger = mint("1000", NOW);
  char *expired = mint("42", NOW - 600);
  char query[2048];
  uint32_t code = 0;
  char *json = NULL;

  /* AdminChat: staff ok, non-staff 4403, no token 4401, expired 4401, unknown 4401, inactive 4401. */
  snprintf(query, sizeof query, "token=%s", staff);
  wsauth_handshake *h = start(a, "/ws/admin/chat/", query, "http://localhost:8000", NULL, NULL);
  CHECK(decide(h, 1, &code, &json) == WSAUTH_ACTION_ACCEPT && code == 0);
  CHECK(strstr(json, "\"action\":\"accept\"") != NULL);
  CHECK(strstr(json, "\"user_id\":42") != NULL);
  CHECK(strstr(json, "\"is_staff\":true") != NULL);
  CHECK(strstr(json, "\"carrier\":\"query\"") != NULL);
  CHECK(strstr(json, "\"route\":\"admin_chat\"") != NULL);
  free(json);
  wsauth_handshake_free(h);

  snprintf(query, sizeof query, "access=%s", customer);
  h = start(a, "/ws/admin/chat/", query, NULL, NULL, NULL);
  CHECK(decide(h, 1, &code, &json) == WSAUTH_ACTION_CLOSE && code == 4403);
  CHECK(strstr(json, "\"code\":4403") != NULL);
  free(json);
  wsauth_handshake_free(h);

  h = start(a, "/ws/admin/chat/", "", NULL, NULL, NULL);
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 4401);
  wsauth_handshake_free(h);

  snprintf(query, sizeof query, "token=%s", expired);
  h = start(a, "/ws/admin/chat/", query, NULL, NULL, NULL);
  CHECK(decide(h, 1, &code, &json) == WSAUTH_ACTION_CLOSE && code == 4401);
  CHECK(strstr(json, "expired") != NULL);
  CHECK(strstr(json, expired) == NULL); /* reasons never carry the token */
  free(json);
  wsauth_handshake_free(h);

  snprintf(query, sizeof query, "token=%s", stranger);
  h = start(a, "/ws/admin/chat/", query, NULL, NULL, NULL);
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 4401);
  wsauth_handshake_free(h);

  snprintf(query, sizeof query, "token=%s", inactive);
  h = start(a, "/ws/admin/chat/", query, NULL, NULL, NULL);
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 4401);
  wsauth_handshake_free(h);

  /* Authorization: Bearer and the bearer subprotocol carriers. */
  char bearer[2048];
  snprintf(bearer, sizeof bearer, "Bearer %s", staff);
  h = start(a, "/ws/admin/chat/", "", NULL, "Authorization", bearer);
  CHECK(decide(h, 1, &code, &json) == WSAUTH_ACTION_ACCEPT);
  CHECK(strstr(json, "\"carrier\":\"header\"") != NULL);
  free(json);
  wsauth_handshake_free(h);
  char protocols[2048];
  snprintf(protocols, sizeof protocols, "bearer, %s", staff);
  h = start(a, "/ws/admin/chat/", "", NULL, "Sec-WebSocket-Protocol", protocols);
  CHECK(decide(h, 1, &code, &json) == WSAUTH_ACTION_ACCEPT);
  CHECK(strstr(json, "\"subprotocol\":\"bearer\"") != NULL);
  CHECK(strstr(json, "\"carrier\":\"subprotocol\"") != NULL);
  free(json);
  wsauth_handshake_free(h);

  /* Anonymous customer chat: no credential, or a bad one, connects anonymously. */
  h = start(a, "/ws/chat/lobby/", "", "http://localhost:3000", NULL, NULL);
  CHECK(decide(h, 1, &code, &json) == WSAUTH_ACTION_ACCEPT);
  CHECK(strstr(json, "\"principal\":null") != NULL);
  CHECK(strstr(json, "\"params\":{\"room\":\"lobby\"}") != NULL);
  free(json);
  wsauth_handshake_free(h);
  h = start(a, "/ws/chat/lobby/", "token=garbage", NULL, NULL, NULL);
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_ACCEPT);
  wsauth_handshake_free(h);

  /* Origin not allowed: the upgrade is refused with HTTP 403. No route: 4404. */
  h = start(a, "/ws/chat/lobby/", "", "https://evil.example", NULL, NULL);
  CHECK(decide(h, 1, &code, &json) == WSAUTH_ACTION_DENY && code == 403);
  CHECK(strstr(json, "\"status\":403") != NULL);
  free(json);
  wsauth_handshake_free(h);
  h = start(a, "/ws/nowhere/", "", NULL, NULL, NULL);
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 4404);
  wsauth_handshake_free(h);

  /* Receipt ownership: the host is asked, with every field. */
  snprintf(query, sizeof query, "token=%s", customer);
  h = start(a, "/ws/receipts/5/", query, NULL, NULL, NULL);
  uint32_t step = 0;
  CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_USER);
  CHECK_RC(wsauth_handshake_answer_user(h, "7", 1, PASSWORD, strlen(PASSWORD), true, false, false),
           WSAUTH_RESULT_OK);
  CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_OWNER);
  char field[64];
  size_t flen = 0;
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_KEY, field, sizeof field, &flen), WSAUTH_RESULT_OK);
  CHECK(flen == 1 && field[0] == '7');
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_ROUTE, field, sizeof field, &flen), WSAUTH_RESULT_OK);
  CHECK(flen == 8 && memcmp(field, "receipts", 8) == 0);
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_PARAM, field, sizeof field, &flen), WSAUTH_RESULT_OK);
  CHECK(flen == 2 && memcmp(field, "id", 2) == 0);
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_VALUE, field, sizeof field, &flen), WSAUTH_RESULT_OK);
  CHECK(flen == 1 && field[0] == '5');
  CHECK_RC(wsauth_handshake_request_field(h, 77, field, sizeof field, &flen), WSAUTH_RESULT_INVALID_STATE);
  /* Wrong kinds of answer are refused and change nothing. */
  CHECK_RC(wsauth_handshake_answer_none(h), WSAUTH_RESULT_INVALID_STATE);
  CHECK_RC(wsauth_handshake_answer_session(h, "k", 1, "d", 1, NOW), WSAUTH_RESULT_INVALID_STATE);
  CHECK_RC(wsauth_handshake_answer_bool(h, true), WSAUTH_RESULT_OK);
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_ACCEPT);
  CHECK_RC(wsauth_handshake_answer_bool(h, true), WSAUTH_RESULT_INVALID_STATE);
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_KEY, field, sizeof field, &flen),
           WSAUTH_RESULT_INVALID_STATE);
  wsauth_handshake_free(h);
  h = start(a, "/ws/receipts/5/", query, NULL, NULL, NULL);
  CHECK(decide(h, 0, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 4403);
  wsauth_handshake_free(h);

  /* Membership with a failed lookup: 1013, never 4401. */
  h = start(a, "/ws/conversations/3/", query, NULL, NULL, NULL);
  CHECK(decide(h, -1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 1013);
  wsauth_handshake_free(h);

  free(staff);
  free(customer);
  free(inactive);
  free(stranger);
  free(expired);
  wsauth_authenticator_free(a);
}

static void test_sessions_and_json_start(void) {
  wsauth_authenticator *a = new_authenticator(CONFIG);
  wsauth_session_verifier *sv = NULL;
  const char *settings = "{\"secret\":\"" DJANGO_SECRET "\",\"engine\":\"signed_cookies\"}";
  CHECK_RC(wsauth_session_verifier_new(settings, strlen(settings), &sv), WSAUTH_RESULT_OK);
  const char *mreq = "{\"user_id\":\"42\",\"password\":\"" PASSWORD "\"}";
  char cookie[2048];
  size_t clen = 0;
  CHECK_RC(wsauth_session_verifier_mint(sv, mreq, strlen(mreq), NOW, cookie, sizeof cookie - 1, &clen),
           WSAUTH_RESULT_OK);
  cookie[clen] = '\0';

  char req[4096];
  snprintf(req, sizeof req,
           "{\"path\":\"/ws/admin/chat/\",\"query\":\"\",\"headers\":[[\"cookie\",\"theme=dark; sessionid=%s\"],"
           "[\"origin\",\"http://localhost:8000\"]],\"peer\":\"::1\"}",
           cookie);
  wsauth_handshake *h = NULL;
  CHECK_RC(wsauth_authenticator_start_json(a, req, strlen(req), NOW + 5, &h), WSAUTH_RESULT_OK);
  char out[4096];
  size_t len = 0;
  CHECK_RC(wsauth_handshake_poll_json(h, out, sizeof out, &len), WSAUTH_RESULT_OK);
  CHECK(out_has(out, len, "\"step\":\"user\"") && out_has(out, len, "\"pk\":\"42\""));
  CHECK_RC(wsauth_handshake_answer_user(h, "42", 2, PASSWORD, strlen(PASSWORD), true, true, false),
           WSAUTH_RESULT_OK);
  CHECK_RC(wsauth_handshake_poll_json(h, out, sizeof out, &len), WSAUTH_RESULT_OK);
  CHECK(out_has(out, len, "\"step\":\"done\""));
  CHECK(out_has(out, len, "\"method\":\"session\""));
  CHECK(out_has(out, len, "\"action\":\"accept\""));
  CHECK_RC(wsauth_handshake_poll_json(h, out, 3, &len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
  wsauth_handshake_free(h);

  /* A changed password ends the session: anonymous, hence 4401 on a staff route. */
  h = NULL;
  CHECK_RC(wsauth_authenticator_start_json(a, req, strlen(req), NOW + 5, &h), WSAUTH_RESULT_OK);
  const char *other = "pbkdf2_sha256$1000000$c0salt$changed";
  uint32_t step = 0;
  CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_USER);
  CHECK_RC(wsauth_handshake_answer_user(h, "42", 2, other, strlen(other), true, true, false), WSAUTH_RESULT_OK);
  uint32_t code = 0;
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 4401);
  wsauth_handshake_free(h);

  /* Request errors. */
  h = (wsauth_handshake *)0x1;
  const char *latin1_only = "{\"path\":\"/ws/chat/x/\",\"headers\":[[\"cookie\",\"\\u20ac\"]]}";
  CHECK_RC(wsauth_authenticator_start_json(a, latin1_only, strlen(latin1_only), NOW, &h),
           WSAUTH_RESULT_INVALID_REQUEST);
  const char *bad_peer = "{\"path\":\"/ws/chat/x/\",\"peer\":\"not-an-ip\"}";
  CHECK_RC(wsauth_authenticator_start_json(a, bad_peer, strlen(bad_peer), NOW, &h), WSAUTH_RESULT_INVALID_REQUEST);
  const char *no_path = "{\"query\":\"\"}";
  CHECK_RC(wsauth_authenticator_start_json(a, no_path, strlen(no_path), NOW, &h), WSAUTH_RESULT_INVALID_REQUEST);
  CHECK_RC(wsauth_authenticator_start_json(NULL, no_path, strlen(no_path), NOW, &h), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_authenticator_start_json(a, no_path, strlen(no_path), NOW, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_authenticator_start(a, "/ws/chat/x/", 11, "", 0, NULL, 2, NULL, 0, NOW, &h),
           WSAUTH_RESULT_NULL_PARAMETER);
  const char bad_path[] = "/ws/\xff/";
  CHECK_RC(wsauth_authenticator_start(a, bad_path, sizeof bad_path - 1, "", 0, NULL, 0, NULL, 0, NOW, &h),
           WSAUTH_RESULT_INVALID_UTF8);
  wsauth_header bad_name = {"\xfe", 1, "v", 1};
  CHECK_RC(wsauth_authenticator_start(a, "/ws/chat/x/", 11, "", 0, &bad_name, 1, NULL, 0, NOW, &h),
           WSAUTH_RESULT_INVALID_UTF8);
  wsauth_header null_value = {"cookie", 6, NULL, 5};
  CHECK_RC(wsauth_authenticator_start(a, "/ws/chat/x/", 11, "", 0, &null_value, 1, NULL, 0, NOW, &h),
           WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_authenticator_start(a, "/ws/chat/x/", 11, "", 0, NULL, 0, "999.1.1.1", 9, NOW, &h),
           WSAUTH_RESULT_INVALID_REQUEST);
  CHECK_RC(wsauth_authenticator_start(a, "/ws/chat/x/", 11, "", 0, NULL, 5000, NULL, 0, NOW, &h),
           WSAUTH_RESULT_INPUT_TOO_LARGE);
  CHECK(h == (wsauth_handshake *)0x1);

  /* Handshake calls on NULL, and before a decision. */
  uint32_t action = 0;
  wsauth_close close;
  CHECK_RC(wsauth_handshake_poll(NULL, &step), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_decision(NULL, &action, &close), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_answer_failed(NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_answer_none(NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_answer_bool(NULL, true), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_answer_user(NULL, "1", 1, "p", 1, true, false, false), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_answer_session(NULL, "k", 1, "d", 1, NOW), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_decision_json(NULL, out, sizeof out, &len), WSAUTH_RESULT_NULL_PARAMETER);
  h = start(a, "/ws/admin/chat/", "token=x.y.z", NULL, NULL, NULL);
  CHECK_RC(wsauth_handshake_poll(h, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  wsauth_handshake_free(h);
  char *tok = mint("7", NOW);
  char query[2048];
  snprintf(query, sizeof query, "token=%s", tok);
  h = start(a, "/ws/admin/chat/", query, NULL, NULL, NULL);
  CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_USER);
  CHECK_RC(wsauth_handshake_decision(h, &action, &close), WSAUTH_RESULT_INVALID_STATE);
  CHECK_RC(wsauth_handshake_decision_json(h, out, sizeof out, &len), WSAUTH_RESULT_INVALID_STATE);
  CHECK_RC(wsauth_handshake_answer_bool(h, true), WSAUTH_RESULT_INVALID_STATE);
  const char bad_pw[] = "\xc3";
  CHECK_RC(wsauth_handshake_answer_user(h, "7", 1, bad_pw, 1, true, false, false), WSAUTH_RESULT_INVALID_UTF8);
  CHECK_RC(wsauth_handshake_answer_none(h), WSAUTH_RESULT_OK);
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 4401);
  wsauth_handshake_free(h);
  wsauth_handshake_free(NULL);
  free(tok);

  wsauth_session_verifier_free(sv);
  wsauth_authenticator_free(a);
}

static void test_connections(void) {
  wsauth_authenticator *a = new_authenticator(CONFIG);
  char *tok = mint("42", NOW);
  char query[2048];
  snprintf(query, sizeof query, "token=%s", tok);
  wsauth_handshake *h = start(a, "/ws/admin/chat/", query, NULL, NULL, NULL);
  uint32_t code = 0;
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_ACCEPT);
  /* The authenticator may go first: handshakes and connections keep what they need. */
  wsauth_authenticator_free(a);
  wsauth_connection *c = NULL;
  CHECK_RC(wsauth_connection_new(h, &c), WSAUTH_RESULT_OK);
  wsauth_handshake_free(h);

  uint32_t state = 0;
  CHECK_RC(wsauth_connection_state(c, &state), WSAUTH_RESULT_OK);
  CHECK(state == WSAUTH_CONN_OPEN);
  bool has = false;
  int64_t deadline = 0;
  CHECK_RC(wsauth_connection_poll_timeout(c, &has, &deadline), WSAUTH_RESULT_OK);
  CHECK(has && deadline == NOW + 300);
  wsauth_close close;
  CHECK_RC(wsauth_connection_handle_timeout(c, NOW + 10, &close), WSAUTH_RESULT_OK);
  CHECK(close.code == 0);

  /* Application messages pass through. */
  uint32_t action = 0;
  wsauth_handshake *steps = (wsauth_handshake *)0x1;
  const char *hello = "{\"type\":\"chat\",\"text\":\"hi\"}";
  CHECK_RC(wsauth_connection_handle_message(c, hello, strlen(hello), NOW + 10, &action, &close, &steps),
           WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_MESSAGE_DELIVER && steps == NULL && close.code == 0);

  /* Refresh with a newer token for the same user extends the deadline. */
  char *newer = mint("42", NOW + 100);
  char msg[2048];
  snprintf(msg, sizeof msg, "{\"type\":\"refresh\",\"token\":\"%s\"}", newer);
  CHECK_RC(wsauth_connection_handle_message(c, msg, strlen(msg), NOW + 100, &action, &close, &steps),
           WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_MESSAGE_STEPS && steps != NULL);
  CHECK_RC(wsauth_connection_finish(c, steps, NOW + 100, &close), WSAUTH_RESULT_INVALID_STATE);
  drive(steps, 1);
  CHECK_RC(wsauth_connection_finish(c, steps, NOW + 100, &close), WSAUTH_RESULT_OK);
  CHECK(close.code == 0);
  wsauth_handshake_free(steps);
  CHECK_RC(wsauth_connection_poll_timeout(c, &has, &deadline), WSAUTH_RESULT_OK);
  CHECK(has && deadline == NOW + 400);

  char json[1024];
  size_t len = 0;
  CHECK_RC(wsauth_connection_json(c, json, sizeof json, &len), WSAUTH_RESULT_OK);
  CHECK(out_has(json, len, "\"state\":\"open\"") && out_has(json, len, "\"user_id\":42"));
  CHECK_RC(wsauth_connection_json(c, json, 4, &len), WSAUTH_RESULT_BUFFER_TOO_SMALL);

  /* Large application messages are delivered without being copied; absurd lengths are refused. */
  size_t big_len = 2u << 20;
  char *big = malloc(big_len);
  memset(big, 'x', big_len);
  CHECK_RC(wsauth_connection_handle_message(c, big, big_len, NOW + 101, &action, &close, &steps), WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_MESSAGE_DELIVER && steps == NULL);
  action = 999;
  CHECK_RC(wsauth_connection_handle_message(c, big, (size_t)1 << 31, NOW + 101, &action, &close, &steps),
           WSAUTH_RESULT_INPUT_TOO_LARGE);
  CHECK(action == 999);
  free(big);

  /* Expiry on the open socket: 4401. */
  CHECK_RC(wsauth_connection_handle_timeout(c, NOW + 400, &close), WSAUTH_RESULT_OK);
  CHECK(close.code == 4401 && strcmp(close.reason, "token expired") == 0);
  CHECK_RC(wsauth_connection_state(c, &state), WSAUTH_RESULT_OK);
  CHECK(state == WSAUTH_CONN_CLOSED);
  CHECK_RC(wsauth_connection_poll_timeout(c, &has, &deadline), WSAUTH_RESULT_OK);
  CHECK(!has);
  free(newer);
  free(tok);
  wsauth_connection_free(c);
  wsauth_connection_free(NULL);
}

static void test_message_auth(void) {
  wsauth_authenticator *a = new_authenticator(CONFIG);
  uint32_t code = 0, action = 0, state = 0;
  wsauth_close close;
  wsauth_handshake *steps = NULL;

  /* No credential on a route that allows first-message auth. */
  wsauth_handshake *h = start(a, "/ws/inbox/", "", NULL, NULL, NULL);
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_AWAIT_MESSAGE);
  wsauth_connection *c = NULL;
  CHECK_RC(wsauth_connection_new(h, &c), WSAUTH_RESULT_OK);
  wsauth_connection *c_timeout = NULL;
  CHECK_RC(wsauth_connection_new(h, &c_timeout), WSAUTH_RESULT_OK);
  wsauth_connection *c_broken = NULL;
  CHECK_RC(wsauth_connection_new(h, &c_broken), WSAUTH_RESULT_OK);
  wsauth_connection *c_big = NULL;
  CHECK_RC(wsauth_connection_new(h, &c_big), WSAUTH_RESULT_OK);
  wsauth_handshake_free(h);
  CHECK_RC(wsauth_connection_state(c, &state), WSAUTH_RESULT_OK);
  CHECK(state == WSAUTH_CONN_AWAITING_AUTH);

  char *tok = mint("7", NOW);
  char msg[2048];
  snprintf(msg, sizeof msg, "{\"type\":\"auth\",\"token\":\"%s\"}", tok);
  CHECK_RC(wsauth_connection_handle_message(c, msg, strlen(msg), NOW + 1, &action, &close, &steps), WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_MESSAGE_STEPS && steps != NULL);
  drive(steps, 1);
  CHECK_RC(wsauth_connection_finish(c, steps, NOW + 1, &close), WSAUTH_RESULT_OK);
  CHECK(close.code == 0);
  wsauth_handshake_free(steps);
  CHECK_RC(wsauth_connection_state(c, &state), WSAUTH_RESULT_OK);
  CHECK(state == WSAUTH_CONN_OPEN);

  /* A refresh naming another user closes with 4401. */
  char *other = mint("42", NOW);
  snprintf(msg, sizeof msg, "{\"type\":\"refresh\",\"token\":\"%s\"}", other);
  CHECK_RC(wsauth_connection_handle_message(c, msg, strlen(msg), NOW + 2, &action, &close, &steps), WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_MESSAGE_STEPS);
  drive(steps, 1);
  CHECK_RC(wsauth_connection_finish(c, steps, NOW + 2, &close), WSAUTH_RESULT_OK);
  CHECK(close.code == 4401);
  wsauth_handshake_free(steps);
  /* Messages after the close change nothing. */
  CHECK_RC(wsauth_connection_handle_message(c, "x", 1, NOW + 3, &action, &close, &steps), WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_MESSAGE_HANDLED && steps == NULL);

  /* No auth message before the deadline: 4408. */
  bool has = false;
  int64_t deadline = 0;
  CHECK_RC(wsauth_connection_poll_timeout(c_timeout, &has, &deadline), WSAUTH_RESULT_OK);
  CHECK(has && deadline > NOW);
  CHECK_RC(wsauth_connection_handle_timeout(c_timeout, deadline, &close), WSAUTH_RESULT_OK);
  CHECK(close.code == 4408);

  /* A malformed control message: 4400. */
  const char *broken = "{\"type\":\"auth\"}";
  CHECK_RC(wsauth_connection_handle_message(c_broken, broken, strlen(broken), NOW + 1, &action, &close, &steps),
           WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_MESSAGE_CLOSE && close.code == 4400 && close.reason_len > 0);

  /* Waiting for the auth message, an oversized message closes with 4400. */
  size_t big_len = 64 * 1024;
  char *big = malloc(big_len);
  memset(big, ' ', big_len);
  CHECK_RC(wsauth_connection_handle_message(c_big, big, big_len, NOW + 1, &action, &close, &steps), WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_MESSAGE_CLOSE && close.code == 4400);
  free(big);
  wsauth_connection_free(c_big);

  /* Connection calls on NULL, and from a closing decision. */
  CHECK_RC(wsauth_connection_state(NULL, &state), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_state(c, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_poll_timeout(NULL, &has, &deadline), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_poll_timeout(c, NULL, &deadline), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_handle_timeout(NULL, NOW, &close), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_handle_timeout(c, NOW, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_handle_message(NULL, "x", 1, NOW, &action, &close, &steps), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_handle_message(c, NULL, 1, NOW, &action, &close, &steps), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_handle_message(c, "x", 1, NOW, &action, &close, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_finish(NULL, NULL, NOW, &close), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_json(NULL, msg, sizeof msg, &(size_t){0}), WSAUTH_RESULT_NULL_PARAMETER);
  h = start(a, "/ws/admin/chat/", "", NULL, NULL, NULL);
  CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE);
  wsauth_connection *none = (wsauth_connection *)0x1;
  CHECK_RC(wsauth_connection_new(h, &none), WSAUTH_RESULT_INVALID_STATE);
  CHECK_RC(wsauth_connection_new(h, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_new(NULL, &none), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK(none == (wsauth_connection *)0x1);
  wsauth_handshake_free(h);

  free(tok);
  free(other);
  wsauth_connection_free(c);
  wsauth_connection_free(c_timeout);
  wsauth_connection_free(c_broken);
  wsauth_authenticator_free(a);
}

static void test_db_sessions(void) {
  static const char *db_config =
      "{\"jwt\":{\"secret\":\"" JWT_SECRET "\"},\"users\":{\"source\":\"directory\"},"
      "\"session\":{\"engine\":\"db\",\"secret\":\"" DJANGO_SECRET "\"},"
      "\"routes\":[{\"name\":\"logs\",\"path\":\"/ws/logs/\",\"requirement\":\"staff\"}]}";
  wsauth_authenticator *a = new_authenticator(db_config);
  wsauth_session_verifier *sv = NULL;
  const char *settings = "{\"secret\":\"" DJANGO_SECRET "\",\"engine\":\"db\"}";
  CHECK_RC(wsauth_session_verifier_new(settings, strlen(settings), &sv), WSAUTH_RESULT_OK);
  const char *mreq = "{\"user_id\":\"42\",\"password\":\"" PASSWORD "\"}";
  char data[2048];
  size_t dlen = 0;
  CHECK_RC(wsauth_session_verifier_mint(sv, mreq, strlen(mreq), NOW, data, sizeof data, &dlen), WSAUTH_RESULT_OK);
  const char *key = "q8w7e6r5t4y3u2i1o0p9a8s7d6f5g4h3";
  char cookie[128];
  snprintf(cookie, sizeof cookie, "sessionid=%s", key);

  for (int round = 0; round < 8; round++) {
    wsauth_handshake *h = start(a, "/ws/logs/", "", NULL, "Cookie", cookie);
    uint32_t step = 0;
    CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
    CHECK(step == WSAUTH_STEP_SESSION);
    char field[64];
    size_t flen = 0;
    CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_KEY, field, sizeof field, &flen), WSAUTH_RESULT_OK);
    CHECK(flen == strlen(key) && memcmp(field, key, flen) == 0);
    CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_ROUTE, field, sizeof field, &flen),
             WSAUTH_RESULT_INVALID_STATE);
    CHECK_RC(wsauth_handshake_answer_user(h, "42", 2, PASSWORD, strlen(PASSWORD), true, true, false),
             WSAUTH_RESULT_INVALID_STATE);
    uint32_t code = 0;
    if (round == 0) {
      /* The row, still valid: then the user, then accept. */
      CHECK_RC(wsauth_handshake_answer_session(h, key, strlen(key), data, dlen, NOW + 100), WSAUTH_RESULT_OK);
      CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_ACCEPT);
    } else if (round == 1) {
      /* No row: anonymous, so 4401 on a staff route. */
      CHECK_RC(wsauth_handshake_answer_none(h), WSAUTH_RESULT_OK);
      CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 4401);
    } else if (round == 2) {
      /* The database is down: 1013. */
      CHECK_RC(wsauth_handshake_answer_failed(h), WSAUTH_RESULT_OK);
      CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 1013);
      CHECK_RC(wsauth_handshake_answer_failed(h), WSAUTH_RESULT_INVALID_STATE);
      CHECK_RC(wsauth_handshake_answer_session_iso(h, key, strlen(key), data, dlen, "2025-06-15T15:08:20Z", 20),
               WSAUTH_RESULT_INVALID_STATE);
    } else if (round == 3) {
      /* expire_date as Django stores it (NOW is 2025-06-15T15:06:40Z): the core converts it. */
      const char *iso = "2025-06-15T15:08:20.250000+00:00";
      CHECK_RC(wsauth_handshake_answer_session_iso(h, key, strlen(key), data, dlen, iso, strlen(iso)),
               WSAUTH_RESULT_OK);
      CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_ACCEPT);
    } else if (round == 4) {
      /* Another offset, the same instant as round 3 without its fraction. */
      const char *iso = "2025-06-15T17:08:20+02:00";
      CHECK_RC(wsauth_handshake_answer_session_iso(h, key, strlen(key), data, dlen, iso, strlen(iso)),
               WSAUTH_RESULT_OK);
      CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_ACCEPT);
    } else if (round == 5) {
      /* A fraction counts as the next whole second: 15:06:39.5 is NOW, and
       * expire_date == now is expired (Django: expire_date__gt=now). No offset is UTC. */
      const char *iso = "2025-06-15 15:06:39.500000";
      CHECK_RC(wsauth_handshake_answer_session_iso(h, key, strlen(key), data, dlen, iso, strlen(iso)),
               WSAUTH_RESULT_OK);
      char *json = NULL;
      CHECK(decide(h, 1, &code, &json) == WSAUTH_ACTION_CLOSE && code == 4401);
      CHECK(strstr(json, "\"reason\":\"session expired\"") != NULL);
      free(json);
    } else if (round == 6) {
      /* Text that is no date answers nothing: the step is still pending. */
      const char *bad[] = {"15 June 2025", "2025-06-15T25:00:00", "2025-02-30", ""};
      for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_RC(wsauth_handshake_answer_session_iso(h, key, strlen(key), data, dlen, bad[i], strlen(bad[i])),
                 WSAUTH_RESULT_INVALID_REQUEST);
      }
      char msg[256];
      size_t mlen = 0;
      CHECK_RC(wsauth_last_error(msg, sizeof msg, &mlen), WSAUTH_RESULT_OK);
      CHECK(out_has(msg, mlen, "expire_date"));
      CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
      CHECK(step == WSAUTH_STEP_SESSION);
      CHECK_RC(wsauth_handshake_answer_session_iso(h, key, strlen(key), data, dlen, "\xff", 1),
               WSAUTH_RESULT_INVALID_UTF8);
      CHECK_RC(wsauth_handshake_answer_session_iso(h, key, strlen(key), data, dlen, NULL, 5),
               WSAUTH_RESULT_NULL_PARAMETER);
      CHECK_RC(wsauth_handshake_answer_session_iso(NULL, key, strlen(key), data, dlen, "2025-06-15", 10),
               WSAUTH_RESULT_NULL_PARAMETER);
      CHECK_RC(wsauth_handshake_answer_none(h), WSAUTH_RESULT_OK);
      CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 4401);
    } else {
      /* A date alone is midnight UTC: long expired. */
      CHECK_RC(wsauth_handshake_answer_session_iso(h, key, strlen(key), data, dlen, "2025-06-15", 10),
               WSAUTH_RESULT_OK);
      CHECK(decide(h, 1, &code, NULL) == WSAUTH_ACTION_CLOSE && code == 4401);
    }
    wsauth_handshake_free(h);
  }
  wsauth_session_verifier_free(sv);
  wsauth_authenticator_free(a);
}

int main(void) {
  wsauth_token_verifier *v = NULL;
  const char *settings = "{\"secret\":\"" JWT_SECRET "\"}";
  CHECK_RC(wsauth_token_verifier_new(settings, strlen(settings), &v), WSAUTH_RESULT_OK);
  minter = v;
  test_config_errors();
  test_routes();
  test_sessions_and_json_start();
  test_connections();
  test_message_auth();
  test_db_sessions();
  wsauth_token_verifier_free(v);
  return finish("c handshake");
}
