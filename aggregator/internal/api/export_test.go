package api

// useStreamingGunzip turns off the libdeflate fast path (package inflate)
// even where the library is present, so that tests cover both paths. Call
// it before a serves its first request.
func (a *API) useStreamingGunzip() { a.fastGunzip = false }
