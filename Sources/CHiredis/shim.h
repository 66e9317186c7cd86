#ifndef NOTIFY_CHIREDIS_SHIM_H
#define NOTIFY_CHIREDIS_SHIM_H
// hiredis 0.14 (Debian libhiredis-dev): we use only the command formatter and the reply reader;
// SwiftNIO owns the socket.
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#endif
