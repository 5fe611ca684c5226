package collector

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// scrubCase is one command line of testdata/scrub/corpus.txt (the format
// is described at the top of that file).
type scrubCase struct {
	line    int
	in      string
	want    string
	secrets []string
}

// loadScrubCorpus reads the corpus; an ordinary line is a case whose want
// is its input and which has no secrets.
func loadScrubCorpus(tb testing.TB) []scrubCase {
	tb.Helper()
	f, err := os.Open(filepath.Join("testdata", "scrub", "corpus.txt"))
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var cases []scrubCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		if len(l) < 2 || l[1] != ' ' {
			tb.Fatalf("corpus.txt:%d: want a marker and a space, got %q", n, l)
		}
		text := l[2:]
		last := len(cases) - 1
		switch l[0] {
		case '<':
			cases = append(cases, scrubCase{line: n, in: text, want: "\x00unset"})
		case '=':
			cases = append(cases, scrubCase{line: n, in: text, want: text})
		case '>':
			if last < 0 || cases[last].want != "\x00unset" {
				tb.Fatalf("corpus.txt:%d: > without its < line", n)
			}
			cases[last].want = text
		case '!':
			if last < 0 || cases[last].in == cases[last].want {
				tb.Fatalf("corpus.txt:%d: ! outside a < record", n)
			}
			cases[last].secrets = append(cases[last].secrets, text)
		default:
			tb.Fatalf("corpus.txt:%d: unknown marker %q", n, l[0])
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	for _, c := range cases {
		if c.want == "\x00unset" {
			tb.Fatalf("corpus.txt:%d: < without its > line", c.line)
		}
	}
	return cases
}

func TestScrubCorpus(t *testing.T) {
	t.Parallel()
	f := func(c scrubCase) {
		t.Helper()
		got := ScrubCmdline(c.in)
		if got != c.want {
			t.Errorf("corpus.txt:%d: ScrubCmdline(%q)\n got %q\nwant %q", c.line, c.in, got, c.want)
		}
		if len(got) > len(c.in) {
			t.Errorf("corpus.txt:%d: output longer than input: %q", c.line, got)
		}
		for _, secret := range c.secrets {
			if !strings.Contains(c.in, secret) {
				t.Errorf("corpus.txt:%d: secret %q is not in the input", c.line, secret)
			}
			if strings.Contains(got, secret) {
				t.Errorf("corpus.txt:%d: secret %q survived: %q", c.line, secret, got)
			}
		}
		if again := ScrubCmdline(got); again != got {
			t.Errorf("corpus.txt:%d: not idempotent: %q -> %q", c.line, got, again)
		}
	}
	cases := loadScrubCorpus(t)
	var secret, ordinary int
	for _, c := range cases {
		f(c)
		if c.in == c.want {
			ordinary++
		} else {
			secret++
		}
	}
	// The corpus is the specification; keep it from shrinking unnoticed.
	if secret < 60 || ordinary < 40 {
		t.Fatalf("corpus has %d command lines with secrets and %d ordinary ones, want at least 60 and 40", secret, ordinary)
	}
}

func TestScrubCmdlineEdges(t *testing.T) {
	t.Parallel()
	f := func(in, want string) {
		t.Helper()
		if got := ScrubCmdline(in); got != want {
			t.Fatalf("ScrubCmdline(%q)\n got %q\nwant %q", in, got, want)
		}
	}
	f("", "")
	f("-", "-")
	f("--password", "--password")
	f("--password=", "--password=")
	// The mask is never longer than what it hides.
	f("--password=a", "--password=*")
	f("--password=ab", "--password=**")
	f("--password=abc", "--password=***")
	f("--password=abcdefghijklmnop", "--password=***")
	// Adjacent short masks merge, so a second pass changes nothing.
	f(`{"token":"a","x":1}`, `{"token":"*","x":1}`)
	// An unclosed quote masks to the end of the word.
	f(`--password="abc def`, `--password="*** def`)
	// A quoted value runs to its closing quote across words.
	f(`--password="a b c" --x`, `--password="***" --x`)
	// mysql -p alone prompts: the next word is the database.
	f("mysql -p -u root app", "mysql -p -u root app")
	// ssh after sshpass reads -p as a port again.
	f("sshpass -p pw1 ssh -p 22 h", "sshpass -p *** ssh -p 22 h")
	// docker -p publishes a port except after login.
	f("docker run -p 80:80 x", "docker run -p 80:80 x")
	// Names match whatever their case; bytes that are not UTF-8 pass through.
	f("app --PASSWORD=x --Secret=yy", "app --PASSWORD=* --Secret=**")
	f("\xff\xfe --token=\xff\xfe\xfd x", "\xff\xfe --token=*** x")
}

// TestScrubCmdlineNoAlloc: the exporter scrubs every new command line on
// every scan, and most have nothing to hide.
func TestScrubCmdlineNoAlloc(t *testing.T) {
	for _, c := range loadScrubCorpus(t) {
		if c.in != c.want {
			continue
		}
		if n := testing.AllocsPerRun(20, func() { ScrubCmdline(c.in) }); n != 0 {
			t.Errorf("corpus.txt:%d: %v allocations for a line with nothing to hide: %q", c.line, n, c.in)
		}
	}
}
