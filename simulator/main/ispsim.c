/* ispsim: the simulated ISP and internet around the LAN (docs/ispsim.md). main() only. */
#include "sim_run.h"

int main(int argc, char **argv) { return sim_run_main(argc, argv); }
