/* sendmail: hand a message to zolderd, the classic way. main() only: arguments. */
#include <stdio.h>
#include <sysexits.h>

#include "core/sendmail.h"

int main(int argc, char **argv)
{
    struct sendmail_args args;
    if (sendmail_args_parse(argc, argv, &args) < 0) {
        fprintf(stderr, "sendmail: %s\n"
                        "usage: sendmail [-C FILE] [-t] [-i|-oi] [-f SENDER] [-F NAME] [-v]\n"
                        "                [-B 7BIT|8BITMIME] [-N DSN] [-R hdrs|full] [-V ENVID]\n"
                        "                [-bm] [RECIPIENT...]\n"
                        "       sendmail [-C FILE] -bs | -bp | -q\n"
                        "(docs/commands.md)\n",
                args.error);
        return EX_USAGE;
    }
    return sendmail_run(&args);
}
