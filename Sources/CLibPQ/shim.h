// libpq, PostgreSQL's C client library (Debian libpq-dev), for the PostgreSQL calibrator
// store (LossdService/Store/PostgresCalibratorStore.swift).
#include <libpq-fe.h>
