/*
 * harness_internal.h — what the harness files share with each other and not with the tests.
 */
#ifndef CAIRN_HARNESS_INTERNAL_H
#define CAIRN_HARNESS_INTERNAL_H

/* Record the Cairn binary (argv[1], else $CAIRN_BIN) and the mode ($CAIRN_TEST_BROKER). */
void harness__init(const char *cairn_bin);
/* After each case: kill and free any broker the case left running. */
void harness__case_done(void);

#endif
