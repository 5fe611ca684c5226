package api

import "time"

// storageFullRetry is the Retry-After of an ingest refused for a full
// disk: space comes back when an operator frees it or retention prunes,
// minutes rather than seconds, and exporters keep their queue meanwhile.
const storageFullRetry = 30 * time.Second
