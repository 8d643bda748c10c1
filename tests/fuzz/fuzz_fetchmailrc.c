/*
 * Fuzz target for reference/proto/fetchmailrc. Invariants: a failure names "rc:LINE:COL: ";
 * a success has every server named, at least one user each, lists within their caps, and
 * every smtphost that splits has a host and a port in 1-65535.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetchmailrc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fetchrc rc;
    char err[FETCHRC_ERROR_MAX];
    if (!fetchrc_parse(&rc, "rc", (const char *)data, size, err)) {
        fuzz_check(strncmp(err, "rc:", 3) == 0);
    } else {
        fuzz_check(rc.nservers <= FETCHRC_SERVERS_MAX);
        for (size_t i = 0; i < rc.nservers; i++) {
            const struct fetchrc_server *s = &rc.servers[i];
            fuzz_check(s->name != NULL && s->nusers >= 1 && s->nusers <= FETCHRC_USERS_MAX);
            fuzz_check(s->naka <= FETCHRC_LIST_MAX && s->nlocaldomains <= FETCHRC_LIST_MAX);
            for (size_t j = 0; j < s->nusers; j++) {
                fuzz_check(s->users[j].remote != NULL);
                fuzz_check(s->users[j].nlocals <= FETCHRC_LIST_MAX);
                fuzz_check(fetchrc_port(s, &s->users[j]) > 0);
                for (size_t k = 0; k < s->users[j].nsmtphosts; k++) {
                    char host[64];
                    unsigned port = 0;
                    if (fetchrc_smtphost(s->users[j].smtphosts[k], host, sizeof host, &port))
                        fuzz_check(host[0] != '\0' && port >= 1 && port <= 65535);
                }
            }
        }
    }
    fetchrc_free(&rc);
    return 0;
}
