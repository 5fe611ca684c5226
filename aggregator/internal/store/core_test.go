package store

import (
	"reflect"
	"strings"
	"testing"
)

func TestNumbered(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := numbered(in); got != want {
			t.Errorf("numbered(%q) = %q, want %q", in, got, want)
		}
	}
	f("SELECT 1", "SELECT 1")
	f("a = ?", "a = $1")
	f("a = ? AND b BETWEEN ? AND ? LIMIT ?", "a = $1 AND b BETWEEN $2 AND $3 LIMIT $4")
	f(`x LIKE ? ESCAPE '\' OR y LIKE ? ESCAPE '\'`, `x LIKE $1 ESCAPE '\' OR y LIKE $2 ESCAPE '\'`)
	f("a = '?' AND b = ?", "a = '?' AND b = $1")
}

// Every query is the same text in both dialects but for the placeholders,
// except where an engine needs its own: a query changed for one engine
// alone fails here.
func TestDialectsDifferOnlyWhereMeant(t *testing.T) {
	lite, pg := reflect.ValueOf(*sqliteSQL), reflect.ValueOf(*postgresSQL)
	own := map[string]bool{"hosts": true, "eventsSearch": true, "rebaseDeps": true}
	for i := range lite.NumField() {
		name := lite.Type().Field(i).Name
		l, p := lite.Field(i).String(), pg.Field(i).String()
		if l == "" || p == "" {
			t.Errorf("%s: empty", name)
			continue
		}
		if strings.Contains(p, "?") {
			t.Errorf("%s: PostgreSQL text keeps a ?: %s", name, p)
		}
		if same := numbered(l) == p; same == own[name] {
			t.Errorf("%s: same text in both dialects = %v, want %v\n%s\n%s", name, same, !own[name], l, p)
		}
	}
}
