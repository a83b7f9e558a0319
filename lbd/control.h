/* control.h -- the control socket (pgvipctl) and node commands from the peer lbd. */
#ifndef LBD_CONTROL_H
#define LBD_CONTROL_H

#include "lbd.h"

int control_start(struct lbd *l);
void control_stop(struct lbd *l);
/* The pair's key from lbd.peer.key_file: 0, or -errno with err saying why. */
int control_read_key(const char *path, uint8_t *key, size_t *len, char *err, size_t errsize);
/* A node command the peer lbd signed (the body of a PGWIRE_CODE_PEER_CONTROL packet):
 * checked, run, and answered into ans (a status byte '0' ok / '1' error, then the text);
 * returns the answer's length. */
size_t control_peer_request(struct lbd *l, const uint8_t *body, size_t len, uint8_t *ans,
                            size_t size);

/* lbd.control.state_file. At start, as root: its directory made if missing, and what it
 * keeps applied to the pool just built (nodes it names that the file has not are
 * skipped, with a line each); 0, or -errno when the directory cannot be made (a line on
 * stderr). An unreadable or invalid file is logged and ignored. */
int control_state_restore(struct lbd *l);
/* Write it from the pool (after each operator change, a reload, and once at start as the
 * user lbd runs as); failures are logged. No state_file: nothing. */
void control_state_save(struct lbd *l);

#endif
