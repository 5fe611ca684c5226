package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// errorBody is the one error shape of the whole API (docs/api.md).
type errorBody struct {
	Error string `json:"error"`
}

// writeError answers {"error": msg}. msg must never carry stack traces or
// internal details; client text in it is JSON-escaped by the encoder.
func writeError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Encoding")
	h.Del("Content-Length")
	w.WriteHeader(code)
	b, _ := json.Marshal(errorBody{Error: msg})
	_, _ = w.Write(append(b, '\n'))
}

// writeJSON answers code with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal error: cannot encode the response")
		return
	}
	writeJSONBytes(w, code, b)
}

func writeJSONBytes(w http.ResponseWriter, code int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(code)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte{'\n'})
}

// truncatePath keeps request text echoed in errors short and valid UTF-8.
func truncatePath(s string) string {
	const max = 200
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // invalid bytes become U+FFFD
	}
	return s
}
