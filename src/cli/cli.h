/* The command-line verbs; each returns the process exit status. */
#ifndef BANYAN_CLI_CLI_H
#define BANYAN_CLI_CLI_H

/*
 * Exit statuses: a contract supervisors can act on (docs/cli.md).
 */
#define EXIT_GUEST_OK      0 /* guest powered off (or rebooted, without --on-reboot restart) */
#define EXIT_GUEST_CRASH   1 /* triple fault, KVM internal error, unhandled exit */
#define EXIT_USAGE         2 /* bad option or input; KVM unavailable: nothing was started */
#define EXIT_HOST_ERROR    3 /* the host failed after the VM started */
#define EXIT_GUEST_HALTED  4 /* every vCPU halted with no interrupt controller (tests) */
#define EXIT_SIGNAL_BASE 128 /* stopped by a signal: 128 + its number, as shells report */

int cmd_run(int argc, char **argv);
int cmd_ctl(int argc, char **argv);

#endif
