package store

import (
	"io/fs"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

func TestNumbered(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT 1":                                   "SELECT 1",
		"a = ? AND b BETWEEN ? AND ? LIMIT ?":        "a = $1 AND b BETWEEN $2 AND $3 LIMIT $4",
		`x LIKE ? ESCAPE '\' OR y LIKE ? ESCAPE '\'`: `x LIKE $1 ESCAPE '\' OR y LIKE $2 ESCAPE '\'`,
		"a = '?' AND b = ?":                          "a = '?' AND b = $1", // quoted: not a placeholder
	} {
		if got := numbered(in); got != want {
			t.Errorf("numbered(%q) = %q, want %q", in, got, want)
		}
	}
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

func TestMigrationsOrder(t *testing.T) {
	f := func(names []string, want []string, wantErr bool) {
		t.Helper()
		fsys := fstest.MapFS{}
		for _, n := range names {
			fsys["m/"+n] = &fstest.MapFile{Data: []byte("--")}
		}
		got, err := migrations(fsys, "m")
		if (err != nil) != wantErr || !wantErr && !reflect.DeepEqual(got, want) {
			t.Errorf("migrations(%v) = %v, %v", names, got, err)
		}
	}
	f([]string{"10_j.sql", "2_b.sql", "1_a.sql", "3_c.sql", "4_d.sql", "5_e.sql", "6_f.sql", "7_g.sql", "8_h.sql", "9_i.sql"},
		[]string{"m/1_a.sql", "m/2_b.sql", "m/3_c.sql", "m/4_d.sql", "m/5_e.sql", "m/6_f.sql", "m/7_g.sql", "m/8_h.sql", "m/9_i.sql", "m/10_j.sql"}, false)
	f([]string{"1_a.sql", "3_c.sql"}, nil, true) // a gap
	f([]string{"1_a.sql", "x_b.sql"}, nil, true) // no number
	f([]string{"0_a.sql"}, nil, true)
	// The embedded ones of both engines.
	for fsys, dir := range map[fs.FS]string{migrationFS: "migrations", pgMigrationFS: "migrations_postgres"} {
		if _, err := migrations(fsys, dir); err != nil {
			t.Error(err)
		}
	}
}
