/* The rate step, typed decision getters and the subprotocol on closes, from
 * real C: the host keeps each peer's limiter state in a table in this file. */
#include <stdbool.h>
#include <stdint.h>

#include "check.h"

#define NOW 1750000000LL
#define NOW_MS (NOW * 1000)
#define JWT_SECRET "c-test-signing-key-0123456789abcdef0123456789"

/* 3 attempts at once per peer, then one per 10 s. */
static const char *CONFIG =
    "{\"jwt\":{\"secret\":\"" JWT_SECRET "\"},"
    "\"credentials\":{\"carriers\":[\"subprotocol\",\"header\",\"query\"]},"
    "\"limits\":{\"rate_limit\":{\"requests\":6,\"period_secs\":60,\"burst\":3}},"
    "\"routes\":["
    "{\"name\":\"admin_chat\",\"path\":\"/ws/admin/chat/\",\"requirement\":\"staff\"},"
    "{\"name\":\"inbox\",\"path\":\"/ws/inbox/\",\"requirement\":\"authenticated\"}"
    "]}";

static wsauth_token_verifier *minter;

static char *mint(const char *user_id, bool staff) {
  char req[256];
  snprintf(req, sizeof req,
           "{\"user_id\":\"%s\",\"jti\":\"0123456789abcdef0123456789abcdef\",\"extra\":{\"is_staff\":%s}}", user_id,
           staff ? "true" : "false");
  char buf[2048];
  size_t len = 0;
  CHECK_RC(wsauth_token_verifier_mint(minter, req, strlen(req), NOW, buf, sizeof buf, &len), WSAUTH_RESULT_OK);
  return dup_out(buf, len);
}

/* The host's limiter store: peer text → tat_ms. */
struct slot {
  char peer[64];
  int64_t tat_ms;
};
static struct slot store[8];
static size_t store_len = 0;
static int commits = 0, conflicts = 0;

static struct slot *slot_for(const char *peer) {
  for (size_t i = 0; i < store_len; i++) {
    if (strcmp(store[i].peer, peer) == 0) {
      return &store[i];
    }
  }
  if (store_len == sizeof store / sizeof store[0]) {
    abort();
  }
  struct slot *s = &store[store_len++];
  snprintf(s->peer, sizeof s->peer, "%s", peer);
  s->tat_ms = 0;
  return s;
}

/* Answers the rate steps from the store. When `interfere` is set, another
 * attempt from the same peer "commits first" once, so the compare-and-set
 * fails and the conflict answer is exercised. Returns the decision's action. */
static uint32_t run(wsauth_handshake *h, bool interfere, wsauth_close *close) {
  bool interfered = false;
  for (int i = 0; i < 16; i++) {
    uint32_t step = 99;
    CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
    if (step == WSAUTH_STEP_DONE) {
      break;
    }
    char peer[64];
    size_t peer_len = 0;
    CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_PEER, peer, sizeof peer - 1, &peer_len),
             WSAUTH_RESULT_OK);
    peer[peer_len] = '\0';
    struct slot *s = slot_for(peer);
    if (step == WSAUTH_STEP_RATE) {
      int64_t e = 0, n = 0, idle = 0;
      CHECK_RC(wsauth_handshake_request_rate_commit(h, &e, &n, &idle), WSAUTH_RESULT_INVALID_STATE);
      CHECK_RC(wsauth_handshake_answer_stored(h), WSAUTH_RESULT_INVALID_STATE);
      CHECK_RC(wsauth_handshake_answer_rate(h, s->tat_ms), WSAUTH_RESULT_OK);
    } else if (step == WSAUTH_STEP_RATE_COMMIT) {
      int64_t expected = -1, new_tat = -1, idle_at = -1;
      CHECK_RC(wsauth_handshake_request_rate_commit(h, &expected, &new_tat, &idle_at), WSAUTH_RESULT_OK);
      CHECK(new_tat > expected && idle_at == new_tat);
      CHECK_RC(wsauth_handshake_answer_none(h), WSAUTH_RESULT_INVALID_STATE);
      if (interfere && !interfered) {
        /* Someone else stored first: answer with the state found. */
        interfered = true;
        s->tat_ms = new_tat;
        conflicts++;
        CHECK(s->tat_ms != expected);
        CHECK_RC(wsauth_handshake_answer_rate(h, s->tat_ms), WSAUTH_RESULT_OK);
      } else if (s->tat_ms == expected) {
        s->tat_ms = new_tat;
        commits++;
        CHECK_RC(wsauth_handshake_answer_stored(h), WSAUTH_RESULT_OK);
      } else {
        CHECK_RC(wsauth_handshake_answer_rate(h, s->tat_ms), WSAUTH_RESULT_OK);
      }
    } else {
      CHECK(0 && "unexpected step");
      return 0;
    }
  }
  uint32_t action = 0;
  CHECK_RC(wsauth_handshake_decision(h, &action, close), WSAUTH_RESULT_OK);
  return action;
}

static wsauth_handshake *start(wsauth_authenticator *a, const char *path, const char *peer, int64_t now_ms,
                               const char *protocols, const char *query) {
  wsauth_header headers[2];
  size_t n = 0;
  headers[n++] = (wsauth_header){"host", 4, "localhost:8000", 14};
  if (protocols != NULL) {
    headers[n++] = (wsauth_header){"Sec-WebSocket-Protocol", 22, protocols, strlen(protocols)};
  }
  wsauth_handshake *h = NULL;
  CHECK_RC(wsauth_authenticator_start_ms(a, path, strlen(path), query, strlen(query), headers, n, peer,
                                         peer == NULL ? 0 : strlen(peer), now_ms, &h),
           WSAUTH_RESULT_OK);
  return h;
}

static void test_flood(void) {
  wsauth_authenticator *a = NULL;
  CHECK_RC(wsauth_authenticator_new(CONFIG, strlen(CONFIG), &a), WSAUTH_RESULT_OK);
  char *staff = mint("42", true);
  char query[2048];
  snprintf(query, sizeof query, "token=%s", staff);
  wsauth_close close;

  /* A flood from one peer: the burst (3) is accepted, the rest close with 4429. */
  int accepted = 0, limited = 0;
  for (int i = 0; i < 8; i++) {
    wsauth_handshake *h = start(a, "/ws/admin/chat/", "203.0.113.9", NOW_MS + i, NULL, query);
    uint32_t action = run(h, false, &close);
    if (action == WSAUTH_ACTION_ACCEPT) {
      accepted++;
    } else if (action == WSAUTH_ACTION_CLOSE && close.code == 4429) {
      limited++;
      CHECK(close.reason_len > 0 && close.reason[close.reason_len] == '\0');
      char json[512];
      size_t len = 0;
      CHECK_RC(wsauth_handshake_decision_json(h, json, sizeof json, &len), WSAUTH_RESULT_OK);
      CHECK(out_has(json, len, "\"code\":4429") && out_has(json, len, "\"retry_after\":"));
    }
    wsauth_handshake_free(h);
  }
  CHECK(accepted == 3 && limited == 5);
  CHECK(commits == 3);

  /* Meanwhile another peer (IPv6) is accepted. */
  wsauth_handshake *h = start(a, "/ws/admin/chat/", "::1", NOW_MS + 9, NULL, query);
  uint32_t step = 0;
  CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_RATE);
  char peer[64];
  size_t peer_len = 0;
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_PEER, peer, sizeof peer, &peer_len), WSAUTH_RESULT_OK);
  CHECK(peer_len == 3 && memcmp(peer, "::1", 3) == 0);
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_KEY, peer, sizeof peer, &peer_len),
           WSAUTH_RESULT_INVALID_STATE);
  /* A too-short buffer gets the needed length, and the buffer is untouched. */
  memset(peer, 'Z', sizeof peer);
  peer_len = 0;
  CHECK_RC(wsauth_handshake_request_field(h, WSAUTH_FIELD_PEER, peer, 1, &peer_len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(peer_len == 3 && peer[0] == 'Z');
  CHECK(run(h, false, &close) == WSAUTH_ACTION_ACCEPT);
  wsauth_handshake_free(h);

  /* Once the window has passed, the first peer gets in again; a conflicting
   * commit (another attempt stored first) is answered with the state found and retried. */
  int before = conflicts;
  h = start(a, "/ws/admin/chat/", "203.0.113.9", NOW_MS + 60000, NULL, query);
  CHECK(run(h, true, &close) == WSAUTH_ACTION_ACCEPT);
  CHECK(conflicts == before + 1);
  wsauth_handshake_free(h);

  /* No peer address: no rate step at all (the host cannot key it). */
  h = start(a, "/ws/admin/chat/", NULL, NOW_MS, NULL, query);
  CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_DONE);
  wsauth_handshake_free(h);

  /* The limiter store is down: 1013, never 4401 or an accept. */
  h = start(a, "/ws/admin/chat/", "198.51.100.1", NOW_MS, NULL, query);
  CHECK_RC(wsauth_handshake_answer_failed(h), WSAUTH_RESULT_OK);
  uint32_t action = 0;
  CHECK_RC(wsauth_handshake_decision(h, &action, &close), WSAUTH_RESULT_OK);
  CHECK(action == WSAUTH_ACTION_CLOSE && close.code == 1013);
  wsauth_handshake_free(h);

  /* The rate step from JSON too (seconds clock), answered "none stored". */
  const char *req = "{\"path\":\"/ws/inbox/\",\"peer\":\"192.0.2.7\"}";
  CHECK_RC(wsauth_authenticator_start_json(a, req, strlen(req), NOW, &h), WSAUTH_RESULT_OK);
  char out[512];
  size_t len = 0;
  CHECK_RC(wsauth_handshake_poll_json(h, out, sizeof out, &len), WSAUTH_RESULT_OK);
  CHECK(out_has(out, len, "{\"step\":\"rate\",\"peer\":\"192.0.2.7\"}"));
  CHECK_RC(wsauth_handshake_answer_none(h), WSAUTH_RESULT_OK);
  CHECK_RC(wsauth_handshake_poll_json(h, out, sizeof out, &len), WSAUTH_RESULT_OK);
  CHECK(out_has(out, len, "\"step\":\"rate_commit\"") && out_has(out, len, "\"expected_tat_ms\":0"));
  CHECK(out_has(out, len, "\"new_tat_ms\":1750000010000"));
  CHECK_RC(wsauth_handshake_answer_stored(h), WSAUTH_RESULT_OK);
  CHECK_RC(wsauth_handshake_poll(h, &step), WSAUTH_RESULT_OK);
  CHECK(step == WSAUTH_STEP_DONE);
  wsauth_handshake_free(h);

  /* Rate answers on NULL. */
  CHECK_RC(wsauth_handshake_answer_rate(NULL, 0), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_answer_stored(NULL), WSAUTH_RESULT_NULL_PARAMETER);
  int64_t x = 0;
  CHECK_RC(wsauth_handshake_request_rate_commit(NULL, &x, &x, &x), WSAUTH_RESULT_NULL_PARAMETER);

  free(staff);
  wsauth_authenticator_free(a);
}

/* Typed getters, and the subprotocol on every accepting decision, closes included. */
static void test_decision_getters(void) {
  const char *cfg =
      "{\"jwt\":{\"secret\":\"" JWT_SECRET "\"},"
      "\"credentials\":{\"carriers\":[\"subprotocol\",\"header\",\"query\"]},"
      "\"origins\":{\"allowed\":[\"http://localhost:*\"]},"
      "\"routes\":[{\"name\":\"admin_chat\",\"path\":\"/ws/admin/chat/\",\"requirement\":\"staff\"}]}";
  wsauth_authenticator *a = NULL;
  CHECK_RC(wsauth_authenticator_new(cfg, strlen(cfg), &a), WSAUTH_RESULT_OK);
  char *staff = mint("42", true);
  char *customer = mint("7", false);
  char protocols[2048];
  wsauth_close close;
  wsauth_principal p;
  char sub[16];
  size_t sub_len = 99;
  uint32_t status = 99;

  /* Accept: principal and subprotocol. */
  snprintf(protocols, sizeof protocols, "bearer, %s", staff);
  wsauth_handshake *h = start(a, "/ws/admin/chat/", NULL, NOW_MS, protocols, "");
  CHECK(run(h, false, &close) == WSAUTH_ACTION_ACCEPT);
  CHECK_RC(wsauth_handshake_decision_principal(h, &p), WSAUTH_RESULT_OK);
  CHECK(p.authenticated && p.is_staff && !p.is_superuser && p.is_active && p.method == WSAUTH_METHOD_JWT);
  CHECK(p.user_id_len == 2 && strcmp(p.user_id, "42") == 0 && !p.user_id_numeric);
  CHECK(p.has_expires_at && p.expires_at == NOW + 300 && p.has_deadline && p.deadline == NOW + 300);
  CHECK_RC(wsauth_handshake_decision_subprotocol(h, sub, sizeof sub, &sub_len), WSAUTH_RESULT_OK);
  CHECK(sub_len == 6 && memcmp(sub, "bearer", 6) == 0);
  CHECK_RC(wsauth_handshake_decision_http_status(h, &status), WSAUTH_RESULT_OK);
  CHECK(status == 0);
  wsauth_connection *c = NULL;
  CHECK_RC(wsauth_connection_new(h, &c), WSAUTH_RESULT_OK);
  wsauth_principal cp;
  CHECK_RC(wsauth_connection_principal(c, &cp), WSAUTH_RESULT_OK);
  CHECK(cp.authenticated && strcmp(cp.user_id, "42") == 0 && cp.has_deadline && cp.deadline == NOW + 300);
  CHECK_RC(wsauth_connection_principal(c, NULL), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_connection_principal(NULL, &cp), WSAUTH_RESULT_NULL_PARAMETER);
  wsauth_connection_free(c);
  wsauth_handshake_free(h);

  /* 4403 for a non-staff user, still answering `bearer` (a browser needs it to read the code). */
  snprintf(protocols, sizeof protocols, "bearer, %s", customer);
  h = start(a, "/ws/admin/chat/", NULL, NOW_MS, protocols, "");
  CHECK(run(h, false, &close) == WSAUTH_ACTION_CLOSE && close.code == 4403);
  sub_len = 99;
  CHECK_RC(wsauth_handshake_decision_subprotocol(h, sub, sizeof sub, &sub_len), WSAUTH_RESULT_OK);
  CHECK(sub_len == 6 && memcmp(sub, "bearer", 6) == 0);
  char json[1024];
  size_t len = 0;
  CHECK_RC(wsauth_handshake_decision_json(h, json, sizeof json, &len), WSAUTH_RESULT_OK);
  CHECK(out_has(json, len, "\"action\":\"close\"") && out_has(json, len, "\"subprotocol\":\"bearer\""));
  CHECK(!out_has(json, len, customer));
  CHECK_RC(wsauth_handshake_decision_principal(h, &p), WSAUTH_RESULT_OK);
  CHECK(!p.authenticated && p.method == WSAUTH_METHOD_NONE && !p.has_deadline);
  /* The needed length on a short buffer, then success with exactly that. */
  CHECK_RC(wsauth_handshake_decision_subprotocol(h, sub, 2, &sub_len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
  CHECK(sub_len == 6);
  CHECK_RC(wsauth_handshake_decision_json(h, json, 5, &len), WSAUTH_RESULT_BUFFER_TOO_SMALL);
  size_t needed = len;
  CHECK(needed > 5 && needed < sizeof json);
  CHECK_RC(wsauth_handshake_decision_json(h, json, needed, &len), WSAUTH_RESULT_OK);
  CHECK(len == needed);
  wsauth_handshake_free(h);

  /* 4401 for a bad token offered by subprotocol: `bearer` too. */
  h = start(a, "/ws/admin/chat/", NULL, NOW_MS, "bearer, not.a.token", "");
  CHECK(run(h, false, &close) == WSAUTH_ACTION_CLOSE && close.code == 4401);
  CHECK_RC(wsauth_handshake_decision_subprotocol(h, sub, sizeof sub, &sub_len), WSAUTH_RESULT_OK);
  CHECK(sub_len == 6 && memcmp(sub, "bearer", 6) == 0);
  wsauth_handshake_free(h);

  /* 4401 without the subprotocol offered: nothing to echo. */
  h = start(a, "/ws/admin/chat/", NULL, NOW_MS, NULL, "");
  CHECK(run(h, false, &close) == WSAUTH_ACTION_CLOSE && close.code == 4401);
  sub_len = 99;
  CHECK_RC(wsauth_handshake_decision_subprotocol(h, sub, sizeof sub, &sub_len), WSAUTH_RESULT_OK);
  CHECK(sub_len == 0);
  CHECK_RC(wsauth_handshake_decision_json(h, json, sizeof json, &len), WSAUTH_RESULT_OK);
  CHECK(out_has(json, len, "\"subprotocol\":null"));
  wsauth_handshake_free(h);

  /* A refused origin: HTTP 403, no subprotocol. */
  wsauth_header hdrs[2] = {{"Origin", 6, "https://evil.example", 20},
                           {"Sec-WebSocket-Protocol", 22, protocols, strlen(protocols)}};
  CHECK_RC(wsauth_authenticator_start(a, "/ws/admin/chat/", 15, "", 0, hdrs, 2, NULL, 0, NOW, &h), WSAUTH_RESULT_OK);
  CHECK(run(h, false, &close) == WSAUTH_ACTION_DENY);
  CHECK_RC(wsauth_handshake_decision_http_status(h, &status), WSAUTH_RESULT_OK);
  CHECK(status == 403);
  CHECK_RC(wsauth_handshake_decision_subprotocol(h, sub, sizeof sub, &sub_len), WSAUTH_RESULT_OK);
  CHECK(sub_len == 0);
  wsauth_handshake_free(h);

  /* Getters on NULL. */
  CHECK_RC(wsauth_handshake_decision_principal(NULL, &p), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_decision_subprotocol(NULL, sub, sizeof sub, &sub_len), WSAUTH_RESULT_NULL_PARAMETER);
  CHECK_RC(wsauth_handshake_decision_http_status(NULL, &status), WSAUTH_RESULT_NULL_PARAMETER);

  /* The last error: set by a failure, cleared by the next success. */
  char msg[256];
  size_t msg_len = 0;
  CHECK_RC(wsauth_last_error(msg, sizeof msg, &msg_len), WSAUTH_RESULT_OK);
  CHECK(msg_len > 0);
  CHECK_RC(wsauth_authenticator_start(a, "/ws/admin/chat/", 15, "", 0, NULL, 0, NULL, 0, NOW, &h), WSAUTH_RESULT_OK);
  CHECK_RC(wsauth_last_error(msg, sizeof msg, &msg_len), WSAUTH_RESULT_OK);
  CHECK(msg_len == 0);
  /* Invalid UTF-8 is still a result code, and says so. */
  const char bad_peer[] = "\xff\xfe";
  wsauth_handshake *none = NULL;
  CHECK_RC(wsauth_authenticator_start(a, "/ws/admin/chat/", 15, "", 0, NULL, 0, bad_peer, 2, NOW, &none),
           WSAUTH_RESULT_INVALID_UTF8);
  CHECK(none == NULL);
  CHECK_RC(wsauth_last_error(msg, sizeof msg, &msg_len), WSAUTH_RESULT_OK);
  CHECK(out_has(msg, msg_len, "UTF-8"));
  wsauth_handshake_free(h);

  free(staff);
  free(customer);
  wsauth_authenticator_free(a);
}

int main(void) {
  const char *settings = "{\"secret\":\"" JWT_SECRET "\"}";
  CHECK_RC(wsauth_token_verifier_new(settings, strlen(settings), &minter), WSAUTH_RESULT_OK);
  test_flood();
  test_decision_getters();
  wsauth_token_verifier_free(minter);
  return finish("c rate");
}
