/* wsauth_handshake_authorize from real C: a connection decided once (on a
 * strict anonymous identify route, as the Channels drop-in does), then each
 * endpoint's requirement applied to that decision, with no second
 * verification — the authorized handshake never asks for a user. */
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#define NOW 1750000000LL
#define JWT_SECRET "c-test-signing-key-0123456789abcdef0123456789"
#define PASSWORD "pbkdf2_sha256$1000000$c0salt$Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmE="

#define ROUTES                                                                                                     \
  "\"routes\":["                                                                                                  \
  "{\"name\":\"identify\",\"path\":\"/\",\"requirement\":\"anonymous\",\"strict\":true,\"auth_message\":false},"  \
  "{\"name\":\"chat\",\"path\":\"/ws/chat/<room>/\",\"requirement\":\"anonymous\",\"auth_message\":false},"       \
  "{\"name\":\"status\",\"path\":\"/ws/status/\",\"requirement\":\"anonymous\",\"strict\":true,"                  \
  "\"auth_message\":false},"                                                                                      \
  "{\"name\":\"admin_chat\",\"path\":\"/ws/admin/chat/\",\"requirement\":\"staff\",\"auth_message\":false},"      \
  "{\"name\":\"root\",\"path\":\"/ws/root/\",\"requirement\":\"superuser\",\"auth_message\":false},"              \
  "{\"name\":\"inbox\",\"path\":\"/ws/inbox/\",\"requirement\":\"authenticated\",\"auth_message\":false},"        \
  "{\"name\":\"receipts\",\"path\":\"/ws/receipts/<id>/\",\"requirement\":{\"owner\":\"id\"},"                    \
  "\"auth_message\":false},"                                                                                      \
  "{\"name\":\"conversations\",\"path\":\"/ws/conversations/<id>/\",\"requirement\":{\"member\":\"id\"},"         \
  "\"auth_message\":false}"                                                                                       \
  "]"

static const char *CONFIG = "{\"jwt\":{\"secret\":\"" JWT_SECRET "\"},"
                            "\"users\":{\"source\":\"directory\"},"
                            "\"credentials\":{\"carriers\":[\"subprotocol\",\"header\",\"query\"]},"
                            "\"origins\":{\"allowed\":[\"http://localhost:*\"]}," ROUTES "}";

/* One attempt at once per peer, then one a minute. */
static const char *RATE_CONFIG = "{\"jwt\":{\"secret\":\"" JWT_SECRET "\"},"
                                 "\"users\":{\"source\":\"directory\"},"
                                 "\"credentials\":{\"carriers\":[\"subprotocol\",\"header\",\"query\"]},"
                                 "\"limits\":{\"rate_limit\":{\"requests\":1,\"period_secs\":60,\"burst\":1}}," ROUTES
                                 "}";

struct user {
  const char *pk;
  bool staff, superuser;
};
static const struct user USERS[] = {
    {"42", true, false}, /* staff */
    {"7", false, false}, /* customer */
    {"1", true, true},   /* superuser */
};

static wsauth_token_verifier *minter;
static int user_steps = 0;

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
  CHECK_RC(wsauth_authenticator_new(config, strlen(config), &a), WSAUTH_RESULT_OK);
  CHECK(a != NULL);
  return a;
}

/* Starts a decision on the identify route "/" (as the drop-in's middleware). */
static wsauth_handshake *identify(const wsauth_authenticator *a, const char *query, const char *origin,
                                  const char *protocols) {
  wsauth_header headers[3];
  size_t n = 0;
  headers[n++] = (wsauth_header){"host", 4, "localhost:8000", 14};
  if (origin != NULL) {
    headers[n++] = (wsauth_header){"origin", 6, origin, strlen(origin)};
  }
  if (protocols != NULL) {
    headers[n++] = (wsauth_header){"sec-websocket-protocol", 22, protocols, strlen(protocols)};
  }
  wsauth_handshake *h = NULL;
  CHECK_RC(wsauth_authenticator_start(a, "/", 1, query, strlen(query), headers, n, "127.0.0.1", 9, NOW, &h),
           WSAUTH_RESULT_OK);
  CHECK(h != NULL);
  return h;
}

/* Answers user lookups from USERS (counted); anything else fails. */
static void drive(wsauth_handshake *h, bool fail_users) {
  for (int i = 0; i < 8; i++) {
    uint32_t step = 99;
    CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
    if (step == WSAUTH_STEP_DONE) {
      return;
    }
    if (step == WSAUTH_STEP_RATE) {
      CHECK_RC(wsauth_handshake_answer_none(h), WSAUTH_RESULT_OK);
      continue;
    }
    if (step == WSAUTH_STEP_RATE_COMMIT) {
      CHECK_RC(wsauth_handshake_answer_stored(h), WSAUTH_RESULT_OK);
      continue;
    }
    CHECK(step == WSAUTH_STEP_USER);
    user_steps++;
    if (fail_users) {
      CHECK_RC(wsauth_handshake_answer_failed(h), WSAUTH_RESULT_OK);
      continue;
    }
    char key[64];
    size_t key_len = 0;
    CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_KEY, key, sizeof key - 1, &key_len), WSAUTH_RESULT_OK);
    key[key_len] = '\0';
    const struct user *found = NULL;
    for (size_t u = 0; u < sizeof USERS / sizeof USERS[0]; u++) {
      if (strcmp(USERS[u].pk, key) == 0) {
        found = &USERS[u];
      }
    }
    if (found == NULL) {
      CHECK_RC(wsauth_handshake_answer_none(h), WSAUTH_RESULT_OK);
    } else {
      CHECK_RC(wsauth_handshake_answer_user(h, found->pk, strlen(found->pk), PASSWORD, strlen(PASSWORD), true,
                                            found->staff, found->superuser),
               WSAUTH_RESULT_OK);
    }
  }
  CHECK(0 && "too many steps");
}

/* The connection decided once: identify, driven to its decision. */
static wsauth_handshake *decided(const wsauth_authenticator *a, const char *query, const char *protocols) {
  wsauth_handshake *h = identify(a, query, NULL, protocols);
  drive(h, false);
  return h;
}

/* The policy of `path` for the decided handshake `d`: must need no lookup. */
static wsauth_handshake *authorize(const wsauth_handshake *d, const char *path) {
  wsauth_handshake *h = NULL;
  CHECK_RC(wsauth_handshake_authorize(d, path, strlen(path), NOW, &h), WSAUTH_RESULT_OK);
  CHECK(h != NULL);
  return h;
}

/* The decision of a handshake with no pending lookup: action, close, subprotocol. */
static uint32_t outcome(wsauth_handshake *h, wsauth_close *close, char *sub, size_t sub_cap) {
  uint32_t step = 99;
  CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_DONE); /* no user, session or revocation step: no second verification */
  uint32_t action = 0;
  CHECK_RC(wsauth_handshake_decision(h, &action, close), WSAUTH_RESULT_OK);
  size_t sub_len = 0;
  CHECK_RC(wsauth_handshake_decision_subprotocol(h, sub, sub_cap - 1, &sub_len), WSAUTH_RESULT_OK);
  sub[sub_len] = '\0';
  return action;
}

/* Authorizes `path` on `d` and checks the result: action, code, reason
 * (NULL: any) and subprotocol ("" for none). */
static void expect(const wsauth_handshake *d, const char *path, uint32_t action, uint32_t code, const char *reason,
                   const char *sub) {
  wsauth_handshake *h = authorize(d, path);
  wsauth_close close;
  char got_sub[32];
  uint32_t got = outcome(h, &close, got_sub, sizeof got_sub);
  CHECK(got == action);
  CHECK(close.code == code);
  if (reason != NULL && strcmp(close.reason, reason) != 0) {
    fprintf(stderr, "  %s: reason \"%s\", wanted \"%s\"\n", path, close.reason, reason);
    CHECK(0 && "reason");
  }
  CHECK(strcmp(got_sub, sub) == 0);
  wsauth_handshake_free(h);
}

static void test_policies(void) {
  wsauth_authenticator *a = new_authenticator(CONFIG);
  char *staff = mint("42", NOW);
  char *customer = mint("7", NOW);
  char *root = mint("1", NOW);
  char query[2048];

  /* Staff: one user lookup for the whole connection, then every route decided from it. */
  user_steps = 0;
  snprintf(query, sizeof query, "token=%s", staff);
  wsauth_handshake *d = decided(a, query, NULL);
  CHECK(user_steps == 1);
  expect(d, "/ws/admin/chat/", WSAUTH_ACTION_ACCEPT, 0, "", "");
  expect(d, "/ws/inbox/", WSAUTH_ACTION_ACCEPT, 0, "", "");
  expect(d, "/ws/chat/lobby/", WSAUTH_ACTION_ACCEPT, 0, "", "");
  expect(d, "/ws/root/", WSAUTH_ACTION_CLOSE, 4403, "superuser only", "");
  expect(d, "/ws/nowhere/", WSAUTH_ACTION_CLOSE, 4404, "no route", "");
  CHECK(user_steps == 1);

  /* The accepted principal and the route, as the JSON decision gives them. */
  wsauth_handshake *h = authorize(d, "/ws/admin/chat/");
  wsauth_principal p;
  CHECK_RC(wsauth_handshake_decision_principal(h, &p), WSAUTH_RESULT_OK);
  CHECK(p.authenticated && p.is_staff && !p.is_superuser && strcmp(p.user_id, "42") == 0);
  CHECK(p.has_expires_at && p.has_deadline);
  char json[1024];
  size_t len = 0;
  CHECK_RC(wsauth_handshake_decision_json(h, json, sizeof json, &len), WSAUTH_RESULT_OK);
  CHECK(out_has(json, len, "\"route\":\"admin_chat\""));
  CHECK(out_has(json, len, "\"carrier\":\"query\""));
  /* An authorized accept opens a connection that closes when the token expires. */
  wsauth_connection *c = NULL;
  CHECK_RC(wsauth_connection_new(h, &c), WSAUTH_RESULT_OK);
  bool has = false;
  int64_t deadline = 0;
  CHECK_RC(wsauth_connection_poll_timeout(c, &has, &deadline), WSAUTH_RESULT_OK);
  CHECK(has && deadline == p.deadline);
  wsauth_connection_free(c);
  wsauth_handshake_free(h);
  /* The decided handshake is unchanged: still the identify decision. */
  uint32_t action = 0;
  wsauth_close close;
  CHECK_RC(wsauth_handshake_decision(d, &action, &close), WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_ACTION_ACCEPT);
  wsauth_handshake_free(d);

  /* A customer: 4403 with the core's reasons; authenticated routes accept. */
  user_steps = 0;
  snprintf(query, sizeof query, "access=%s", customer);
  d = decided(a, query, NULL);
  expect(d, "/ws/admin/chat/", WSAUTH_ACTION_CLOSE, 4403, "staff only", "");
  expect(d, "/ws/root/", WSAUTH_ACTION_CLOSE, 4403, "superuser only", "");
  expect(d, "/ws/inbox/", WSAUTH_ACTION_ACCEPT, 0, "", "");

  /* Owner and member routes ask the host, with every field; nothing else. */
  h = authorize(d, "/ws/receipts/a%20b/");
  uint32_t step = 0;
  CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_OWNER);
  char field[64];
  size_t flen = 0;
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_USER, field, sizeof field, &flen), WSAUTH_RESULT_OK);
  CHECK(flen == 1 && field[0] == '7');
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_ROUTE, field, sizeof field, &flen), WSAUTH_RESULT_OK);
  CHECK(flen == 8 && memcmp(field, "receipts", 8) == 0);
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_PARAM, field, sizeof field, &flen), WSAUTH_RESULT_OK);
  CHECK(flen == 2 && memcmp(field, "id", 2) == 0);
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_VALUE, field, sizeof field, &flen), WSAUTH_RESULT_OK);
  CHECK(flen == 3 && memcmp(field, "a b", 3) == 0);
  CHECK_RC(wsauth_handshake_answer_bool(h, true), WSAUTH_RESULT_OK);
  char sub[32];
  CHECK(outcome(h, &close, sub, sizeof sub) == WSAUTH_ACTION_ACCEPT);
  wsauth_handshake_free(h);

  h = authorize(d, "/ws/receipts/5/");
  CHECK_RC(wsauth_handshake_answer_bool(h, false), WSAUTH_RESULT_OK);
  CHECK(outcome(h, &close, sub, sizeof sub) == WSAUTH_ACTION_CLOSE);
  CHECK(close.code == 4403 && strcmp(close.reason, "not the owner") == 0);
  wsauth_handshake_free(h);

  h = authorize(d, "/ws/conversations/3/");
  CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_MEMBER);
  CHECK_RC(wsauth_handshake_answer_bool(h, false), WSAUTH_RESULT_OK);
  CHECK(outcome(h, &close, sub, sizeof sub) == WSAUTH_ACTION_CLOSE);
  CHECK(close.code == 4403 && strcmp(close.reason, "not a member") == 0);
  wsauth_handshake_free(h);

  h = authorize(d, "/ws/conversations/3/");
  CHECK_RC(wsauth_handshake_answer_failed(h), WSAUTH_RESULT_OK);
  CHECK(outcome(h, &close, sub, sizeof sub) == WSAUTH_ACTION_CLOSE);
  CHECK(close.code == 1013);
  wsauth_handshake_free(h);
  CHECK(user_steps == 1);
  wsauth_handshake_free(d);

  /* A superuser passes every requirement it meets. */
  snprintf(query, sizeof query, "token=%s", root);
  d = decided(a, query, NULL);
  expect(d, "/ws/root/", WSAUTH_ACTION_ACCEPT, 0, "", "");
  expect(d, "/ws/admin/chat/", WSAUTH_ACTION_ACCEPT, 0, "", "");
  wsauth_handshake_free(d);

  free(staff);
  free(customer);
  free(root);
  wsauth_authenticator_free(a);
}

static void test_refused_and_anonymous(void) {
  wsauth_authenticator *a = new_authenticator(CONFIG);
  char *expired = mint("42", NOW - 600);
  char *customer = mint("7", NOW);
  char query[2048];
  char protocols[2048];

  /* A refused credential (4401 on the strict identify route) is anonymous on
   * a non-strict anonymous route and refused again, for the same reason, on
   * any other. */
  snprintf(query, sizeof query, "token=%s", expired);
  wsauth_handshake *d = decided(a, query, NULL);
  uint32_t action = 0;
  wsauth_close close;
  CHECK_RC(wsauth_handshake_decision(d, &action, &close), WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_ACTION_CLOSE && close.code == 4401 && strcmp(close.reason, "token expired") == 0);
  expect(d, "/ws/chat/lobby/", WSAUTH_ACTION_ACCEPT, 0, "", "");
  expect(d, "/ws/status/", WSAUTH_ACTION_CLOSE, 4401, "token expired", "");
  expect(d, "/ws/inbox/", WSAUTH_ACTION_CLOSE, 4401, "token expired", "");
  expect(d, "/ws/admin/chat/", WSAUTH_ACTION_CLOSE, 4401, "token expired", "");
  wsauth_handshake *h = authorize(d, "/ws/chat/lobby/");
  wsauth_principal p;
  CHECK_RC(wsauth_handshake_decision_principal(h, &p), WSAUTH_RESULT_OK);
  CHECK(!p.authenticated && p.user_id_len == 0);
  wsauth_handshake_free(h);
  wsauth_handshake_free(d);

  /* No credential: anonymous where allowed, 4401 where not. */
  d = decided(a, "", NULL);
  expect(d, "/ws/chat/lobby/", WSAUTH_ACTION_ACCEPT, 0, "", "");
  expect(d, "/ws/status/", WSAUTH_ACTION_ACCEPT, 0, "", "");
  expect(d, "/ws/admin/chat/", WSAUTH_ACTION_CLOSE, 4401, "authentication required", "");
  expect(d, "/ws/receipts/5/", WSAUTH_ACTION_CLOSE, 4401, "authentication required", "");
  wsauth_handshake_free(d);

  /* The bearer subprotocol is answered on every accepting decision, closes included. */
  snprintf(protocols, sizeof protocols, "bearer, %s", customer);
  d = decided(a, "", protocols);
  expect(d, "/ws/admin/chat/", WSAUTH_ACTION_CLOSE, 4403, "staff only", "bearer");
  expect(d, "/ws/inbox/", WSAUTH_ACTION_ACCEPT, 0, "", "bearer");
  wsauth_handshake_free(d);
  d = decided(a, "", "bearer, garbage");
  expect(d, "/ws/admin/chat/", WSAUTH_ACTION_CLOSE, 4401, "token invalid", "bearer");
  expect(d, "/ws/chat/lobby/", WSAUTH_ACTION_ACCEPT, 0, "", "bearer");
  wsauth_handshake_free(d);

  /* A refused Origin stays refused (HTTP 403), whatever the route. */
  d = identify(a, "", "https://evil.example", NULL);
  drive(d, false);
  h = authorize(d, "/ws/chat/lobby/");
  char sub[32];
  CHECK(outcome(h, &close, sub, sizeof sub) == WSAUTH_ACTION_DENY);
  uint32_t status = 0;
  CHECK_RC(wsauth_handshake_decision_http_status(h, &status), WSAUTH_RESULT_OK);
  CHECK(status == 403);
  wsauth_handshake_free(h);
  wsauth_handshake_free(d);

  /* A failed lookup stays 1013, on an anonymous route too. */
  snprintf(query, sizeof query, "token=%s", customer);
  d = identify(a, query, NULL, NULL);
  drive(d, true);
  expect(d, "/ws/chat/lobby/", WSAUTH_ACTION_CLOSE, 1013, NULL, "");
  expect(d, "/ws/inbox/", WSAUTH_ACTION_CLOSE, 1013, NULL, "");
  wsauth_handshake_free(d);

  free(expired);
  free(customer);
  wsauth_authenticator_free(a);
}

static void test_rate_limited(void) {
  wsauth_authenticator *a = new_authenticator(RATE_CONFIG);
  char *staff = mint("42", NOW);
  char query[2048];
  snprintf(query, sizeof query, "token=%s", staff);
  /* The host's store for one peer: the first attempt commits its state. */
  int64_t tat_ms = 0;
  wsauth_handshake *first = identify(a, query, NULL, NULL);
  uint32_t step = 0;
  CHECK_RC(wsauth_handshake_poll(first, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_RATE);
  CHECK_RC(wsauth_handshake_answer_rate(first, tat_ms), WSAUTH_RESULT_OK);
  CHECK_RC(wsauth_handshake_poll(first, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_RATE_COMMIT);
  int64_t expected = -1, next = 0, idle = 0;
  CHECK_RC(wsauth_handshake_request_rate_commit(first, &expected, &next, &idle), WSAUTH_RESULT_OK);
  CHECK(expected == tat_ms);
  tat_ms = next;
  CHECK_RC(wsauth_handshake_answer_stored(first), WSAUTH_RESULT_OK);
  drive(first, false);
  expect(first, "/ws/admin/chat/", WSAUTH_ACTION_ACCEPT, 0, "", "");
  wsauth_handshake_free(first);

  /* The second, at once: 4429 without any credential check, and 4429 on every route. */
  user_steps = 0;
  wsauth_handshake *d = identify(a, query, NULL, "bearer, x");
  CHECK_RC(wsauth_handshake_answer_rate(d, tat_ms), WSAUTH_RESULT_OK);
  drive(d, false);
  CHECK(user_steps == 0);
  uint32_t action = 0;
  wsauth_close close;
  CHECK_RC(wsauth_handshake_decision(d, &action, &close), WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_ACTION_CLOSE && close.code == 4429);
  expect(d, "/ws/chat/lobby/", WSAUTH_ACTION_CLOSE, 4429, close.reason, "bearer");
  expect(d, "/ws/admin/chat/", WSAUTH_ACTION_CLOSE, 4429, close.reason, "bearer");
  wsauth_handshake *h = authorize(d, "/ws/chat/lobby/");
  char json[512];
  size_t len = 0;
  CHECK_RC(wsauth_handshake_decision_json(h, json, sizeof json, &len), WSAUTH_RESULT_OK);
  CHECK(out_has(json, len, "\"retry_after\":"));
  wsauth_handshake_free(h);
  wsauth_handshake_free(d);
  free(staff);
  wsauth_authenticator_free(a);
}

static void test_misuse(void) {
  wsauth_authenticator *a = new_authenticator(CONFIG);
  char *staff = mint("42", NOW);
  char query[2048];
  snprintf(query, sizeof query, "token=%s", staff);
  wsauth_handshake *pending = identify(a, query, NULL, NULL);
  wsauth_handshake *out = (wsauth_handshake *)0x1;
  /* Lookups still pending: nothing to authorize; the output is untouched. */
  CHECK_RC(wsauth_handshake_authorize(pending, "/ws/inbox/", 10, NOW, &out), WSAUTH_RESULT_INVALID_STATE);
  CHECK(out == (wsauth_handshake *)0x1);
  char msg[256];
  size_t mlen = 0;
  CHECK_RC(wsauth_last_error(msg, sizeof msg, &mlen), WSAUTH_RESULT_OK);
  CHECK(mlen > 0);
  drive(pending, false);
  CHECK_RC(wsauth_handshake_authorize(NULL, "/ws/inbox/", 10, NOW, &out), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_authorize(pending, "/ws/inbox/", 10, NOW, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_authorize(pending, NULL, 10, NOW, &out), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_authorize(pending, "/ws/\xff/", 6, NOW, &out), WSAUTH_RESULT_INVALID_UTF8);
  CHECK(out == (wsauth_handshake *)0x1);
  /* An empty path matches no route: 4404. */
  CHECK_RC(wsauth_handshake_authorize(pending, NULL, 0, NOW, &out), WSAUTH_RESULT_OK);
  wsauth_close close;
  char sub[32];
  CHECK(outcome(out, &close, sub, sizeof sub) == WSAUTH_ACTION_CLOSE && close.code == 4404);
  CHECK_RC(wsauth_last_error(msg, sizeof msg, &mlen), WSAUTH_RESULT_OK);
  CHECK(mlen == 0);
  /* An authorized handshake is decided: it can be authorized again. */
  wsauth_handshake *again = NULL;
  CHECK_RC(wsauth_handshake_authorize(out, "/ws/inbox/", 10, NOW, &again), WSAUTH_RESULT_OK);
  wsauth_handshake_free(again);
  wsauth_handshake_free(out);
  wsauth_handshake_free(pending);
  free(staff);
  wsauth_authenticator_free(a);
}

int main(void) {
  const char *settings = "{\"secret\":\"" JWT_SECRET "\"}";
  CHECK_RC(wsauth_token_verifier_new(settings, strlen(settings), &minter), WSAUTH_RESULT_OK);
  test_policies();
  test_refused_and_anonymous();
  test_rate_limited();
  test_misuse();
  wsauth_token_verifier_free(minter);
  return finish("c authorize");
}
