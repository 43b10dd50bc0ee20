#define _POSIX_C_SOURCE 200809L
/* Embedding libwsauth in a C server: the step loop.
 *
 * Builds an authenticator from a JSON configuration, then decides a list of
 * upgrade requests. The host answers every step from its own state: users
 * and resource owners from in-memory tables, the rate limit from a per-peer
 * table of limiter states (a real server would use its database and Redis).
 * Prints one line per decision; scripts/test-ffi compares the output with
 * step_loop.expected.
 *
 * Build: cc -I ffi/include step_loop.c -L target/debug -lwsauth -o step_loop
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsauth.h"

#define NOW INT64_C(1750000000) /* a fixed clock, so the output is reproducible */
#define SECRET "example-signing-key-0123456789abcdef0123456789"
#define PASSWORD "pbkdf2_sha256$1000000$salt$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA="

static const char *CONFIG =
    "{\"jwt\":{\"secret\":\"" SECRET "\"},"
    "\"users\":{\"source\":\"directory\"},"
    "\"credentials\":{\"carriers\":[\"subprotocol\",\"header\",\"query\"]},"
    "\"origins\":{\"allowed\":[\"https://app.example\"]},"
    "\"limits\":{\"rate_limit\":{\"requests\":1,\"period_secs\":10,\"burst\":2}},"
    "\"routes\":["
    "{\"name\":\"admin_chat\",\"path\":\"/ws/admin/chat/\",\"requirement\":\"staff\"},"
    "{\"name\":\"receipts\",\"path\":\"/ws/receipts/<id>/\",\"requirement\":{\"owner\":\"id\"}},"
    "{\"name\":\"inbox\",\"path\":\"/ws/inbox/\",\"requirement\":\"authenticated\",\"auth_message\":false}"
    "]}";

/* ---- the host's tables ---------------------------------------------------- */

struct user {
  const char *pk;
  bool active, staff, superuser;
};
static const struct user USERS[] = {
    {"42", true, true, false},  /* staff */
    {"7", true, false, false},  /* customer */
    {"9", false, false, false}, /* deactivated */
};

struct owner {
  const char *user, *receipt;
};
static const struct owner OWNERS[] = {{"7", "r-100"}, {"42", "r-200"}};

struct rate_slot {
  char peer[64];
  int64_t tat_ms;
};
static struct rate_slot RATES[16];
static size_t n_rates = 0;

static struct rate_slot *rate_slot(const char *peer) {
  for (size_t i = 0; i < n_rates; i++) {
    if (strcmp(RATES[i].peer, peer) == 0) {
      return &RATES[i];
    }
  }
  if (n_rates == sizeof RATES / sizeof RATES[0]) {
    return NULL;
  }
  struct rate_slot *s = &RATES[n_rates++];
  snprintf(s->peer, sizeof s->peer, "%s", peer);
  s->tat_ms = 0;
  return s;
}

/* ---- helpers -------------------------------------------------------------- */

static void die(const char *what, wsauth_result rc) {
  char msg[256];
  size_t len = 0;
  if (wsauth_last_error(msg, sizeof msg - 1, &len) != WSAUTH_RESULT_OK) {
    len = 0;
  }
  msg[len] = '\0';
  fprintf(stderr, "%s: %s (%s)\n", what, wsauth_result_describe(rc), msg);
  exit(1);
}

#define TRY(expr)                  \
  do {                             \
    wsauth_result rc_ = (expr);    \
    if (rc_ != WSAUTH_RESULT_OK) { \
      die(#expr, rc_);             \
    }                              \
  } while (0)

/* Reads a request field as a NUL-terminated string into `buf`. */
static const char *field(wsauth_handshake *h, uint32_t which, char *buf, size_t cap) {
  size_t len = 0;
  TRY(wsauth_handshake_request_field(h, which, buf, cap - 1, &len));
  buf[len] = '\0';
  return buf;
}

/* ---- the step loop -------------------------------------------------------- */

static void answer(wsauth_handshake *h, uint32_t step) {
  char a[300], b[300];
  switch (step) {
    case WSAUTH_STEP_RATE: {
      struct rate_slot *s = rate_slot(field(h, WSAUTH_FIELD_PEER, a, sizeof a));
      TRY(s == NULL ? wsauth_handshake_answer_failed(h) : wsauth_handshake_answer_rate(h, s->tat_ms));
      return;
    }
    case WSAUTH_STEP_RATE_COMMIT: {
      struct rate_slot *s = rate_slot(field(h, WSAUTH_FIELD_PEER, a, sizeof a));
      int64_t expected = 0, next = 0, idle_at = 0;
      TRY(wsauth_handshake_request_rate_commit(h, &expected, &next, &idle_at));
      if (s == NULL) {
        TRY(wsauth_handshake_answer_failed(h));
      } else if (s->tat_ms == expected) { /* compare-and-set */
        s->tat_ms = next;
        TRY(wsauth_handshake_answer_stored(h));
      } else {
        TRY(wsauth_handshake_answer_rate(h, s->tat_ms));
      }
      return;
    }
    case WSAUTH_STEP_USER: {
      const char *pk = field(h, WSAUTH_FIELD_KEY, a, sizeof a);
      for (size_t i = 0; i < sizeof USERS / sizeof USERS[0]; i++) {
        const struct user *u = &USERS[i];
        if (strcmp(u->pk, pk) == 0) {
          TRY(wsauth_handshake_answer_user(h, u->pk, strlen(u->pk), PASSWORD, strlen(PASSWORD), u->active, u->staff,
                                           u->superuser));
          return;
        }
      }
      TRY(wsauth_handshake_answer_none(h));
      return;
    }
    case WSAUTH_STEP_OWNER: {
      const char *user = field(h, WSAUTH_FIELD_USER, a, sizeof a);
      const char *receipt = field(h, WSAUTH_FIELD_VALUE, b, sizeof b);
      bool owns = false;
      for (size_t i = 0; i < sizeof OWNERS / sizeof OWNERS[0]; i++) {
        owns = owns || (strcmp(OWNERS[i].user, user) == 0 && strcmp(OWNERS[i].receipt, receipt) == 0);
      }
      TRY(wsauth_handshake_answer_bool(h, owns));
      return;
    }
    default: /* sessions, revocation, membership: not configured here */
      TRY(wsauth_handshake_answer_failed(h));
  }
}

/* Decides one upgrade and prints what a server would do with it. */
static void decide(const wsauth_authenticator *a, const char *label, const char *path, const char *token,
                   bool via_subprotocol, const char *origin, const char *peer, int64_t now_ms) {
  char query[2048] = "", protocols[2048];
  wsauth_header headers[3];
  size_t n = 0;
  headers[n++] = (wsauth_header){"host", 4, "app.example", 11};
  if (origin != NULL) {
    headers[n++] = (wsauth_header){"origin", 6, origin, strlen(origin)};
  }
  if (token != NULL && via_subprotocol) {
    snprintf(protocols, sizeof protocols, "bearer, %s", token);
    headers[n++] = (wsauth_header){"sec-websocket-protocol", 22, protocols, strlen(protocols)};
  } else if (token != NULL) {
    snprintf(query, sizeof query, "token=%s", token);
  }

  wsauth_handshake *h = NULL;
  TRY(wsauth_authenticator_start_ms(a, path, strlen(path), query, strlen(query), headers, n, peer, strlen(peer),
                                    now_ms, &h));
  for (;;) {
    uint32_t step = 0;
    TRY(wsauth_handshake_poll(h, &step));
    if (step == WSAUTH_STEP_DONE) {
      break;
    }
    answer(h, step);
  }

  uint32_t action = 0;
  wsauth_close close;
  TRY(wsauth_handshake_decision(h, &action, &close));
  char sub[64];
  size_t sub_len = 0;
  TRY(wsauth_handshake_decision_subprotocol(h, sub, sizeof sub - 1, &sub_len));
  sub[sub_len] = '\0';
  const char *echo = sub_len > 0 ? sub : "-";

  printf("%-22s ", label);
  if (action == WSAUTH_ACTION_DENY) {
    uint32_t status = 0;
    TRY(wsauth_handshake_decision_http_status(h, &status));
    printf("HTTP %" PRIu32 "\n", status);
  } else if (action == WSAUTH_ACTION_CLOSE) {
    printf("accept, close %" PRIu32 " \"%s\" subprotocol=%s\n", close.code, close.reason, echo);
  } else {
    wsauth_principal p;
    TRY(wsauth_handshake_decision_principal(h, &p));
    if (p.authenticated) {
      printf("accept user=%s staff=%d deadline=%+" PRId64 " subprotocol=%s\n", p.user_id, p.is_staff,
             p.has_deadline ? p.deadline - NOW : 0, echo);
    } else {
      printf("accept anonymous subprotocol=%s\n", echo);
    }
  }
  wsauth_handshake_free(h);
}

static char *mint(const wsauth_token_verifier *v, const char *user_id, int64_t now) {
  char req[128], buf[1024];
  size_t len = 0;
  snprintf(req, sizeof req, "{\"user_id\":\"%s\",\"jti\":\"00112233445566778899aabbccddeeff\"}", user_id);
  TRY(wsauth_token_verifier_mint(v, req, strlen(req), now, buf, sizeof buf - 1, &len));
  buf[len] = '\0';
  return strdup(buf);
}

int main(void) {
  wsauth_authenticator *a = NULL;
  TRY(wsauth_authenticator_new(CONFIG, strlen(CONFIG), &a));
  wsauth_token_verifier *minter = NULL;
  const char *settings = "{\"secret\":\"" SECRET "\"}";
  TRY(wsauth_token_verifier_new(settings, strlen(settings), &minter));
  char *staff = mint(minter, "42", NOW);
  char *customer = mint(minter, "7", NOW);
  char *inactive = mint(minter, "9", NOW);
  char *stranger = mint(minter, "1000", NOW);
  char *expired = mint(minter, "42", NOW - 600);
  const int64_t ms = NOW * 1000;
  const char *app = "https://app.example";

  decide(a, "staff admin_chat", "/ws/admin/chat/", staff, true, app, "10.0.0.1", ms);
  decide(a, "customer admin_chat", "/ws/admin/chat/", customer, true, app, "10.0.0.2", ms);
  decide(a, "expired admin_chat", "/ws/admin/chat/", expired, false, app, "10.0.0.3", ms);
  decide(a, "inactive inbox", "/ws/inbox/", inactive, false, NULL, "10.0.0.4", ms);
  decide(a, "stranger inbox", "/ws/inbox/", stranger, false, NULL, "10.0.0.5", ms);
  decide(a, "no token inbox", "/ws/inbox/", NULL, false, NULL, "10.0.0.6", ms);
  decide(a, "owner receipt", "/ws/receipts/r-100/", customer, false, NULL, "10.0.0.7", ms);
  decide(a, "not owner receipt", "/ws/receipts/r-200/", customer, true, NULL, "10.0.0.8", ms);
  decide(a, "evil origin", "/ws/inbox/", customer, true, "https://evil.example", "10.0.0.9", ms);
  decide(a, "no route", "/ws/nowhere/", customer, false, NULL, "10.0.0.10", ms);
  /* One peer floods: the burst (2) gets through, then 4429 until the next interval. */
  decide(a, "flood #1", "/ws/inbox/", customer, false, NULL, "192.0.2.1", ms);
  decide(a, "flood #2", "/ws/inbox/", customer, false, NULL, "192.0.2.1", ms + 1);
  decide(a, "flood #3", "/ws/inbox/", customer, true, NULL, "192.0.2.1", ms + 2);
  decide(a, "other peer", "/ws/inbox/", customer, false, NULL, "2001:db8::1", ms + 3);
  decide(a, "flood after 10 s", "/ws/inbox/", customer, false, NULL, "192.0.2.1", ms + 10002);

  free(staff);
  free(customer);
  free(inactive);
  free(stranger);
  free(expired);
  wsauth_token_verifier_free(minter);
  wsauth_authenticator_free(a);
  return 0;
}
