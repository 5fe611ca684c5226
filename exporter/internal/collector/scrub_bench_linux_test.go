package collector

import (
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/procscope/procscope/internal/testutil"
)

// naiveScrub is the scrubber a reader would first write: a list of regular
// expressions applied one after another. It is the same-run baseline for
// BenchmarkScrub, and covers most of the corpus (the benchmark reports how
// many corpus secrets it lets through).
func naiveScrub(s string) string {
	for _, r := range naiveScrubRules {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

var naiveScrubRules = []struct {
	re   *regexp.Regexp
	repl string
}{
	// --password=x, --password x, -token x
	{regexp.MustCompile(`(?i)((?:^|\s)-{1,2}[\w.-]*(?:passw(?:or)?d|passphrase|secret|token|api[-_]?key|auth|key|pass|pwd|cookie|requirepass|masterauth)[ =])([^\s-]\S*|-\w\w\S*)`), "${1}***"},
	// NAME=x in variables, query strings, option lists
	{regexp.MustCompile(`(?i)([\w.-]*(?:passw(?:or)?d|secret|token|api_?key|access_?key|_pwd|_pass|_auth|_key|cookie)=)[^\s&;,]+`), "${1}***"},
	// scheme://user:password@
	{regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s/@]+@`), "${1}***@"},
	// user:password@tcp(
	{regexp.MustCompile(`(^|[\s=])([\w.-]*:)[^\s/@]+@(tcp|unix)\(`), "${1}${2}***@${3}("},
	// Authorization: Bearer x
	{regexp.MustCompile(`(?i)((?:proxy-)?authorization:\s*(?:bearer|basic|token)?\s*)[^\s"']+`), "${1}***"},
	// X-API-Key: x, Cookie: a=b
	{regexp.MustCompile(`(?i)((?:x-api-key|x-auth-token|private-token|cookie):\s*)[^\s"']+`), "${1}***"},
	// tokens by shape
	{regexp.MustCompile(`\b(gh[pousr]_|github_pat_|glpat-|xox[abeoprs]-|sk_live_|sk_test_|rk_live_|hvs\.|sk-)[\w-]{8,}`), "${1}***"},
	{regexp.MustCompile(`\b(AKIA|ASIA)[A-Z0-9]{16}\b`), "${1}***"},
	{regexp.MustCompile(`\beyJ[\w-]{8,}\.[\w-]+(?:\.[\w-]*)?`), "eyJ***"},
	// mysql -pX, sshpass -p X, redis-cli -a X, docker login -p X
	{regexp.MustCompile(`((?:^|[\s/])(?:mysql|mysqldump|mysqladmin)\s(?:\S+\s)*?-p)[^\s-]\S*`), "${1}***"},
	{regexp.MustCompile(`((?:^|[\s/])(?:sshpass|redis-cli|mongo|mongosh)\s(?:\S+\s)*?-[pa]\s*)[^\s-]\S*`), "${1}***"},
	{regexp.MustCompile(`((?:docker|podman)\s+login\s(?:\S+\s)*?-p\s+)\S+`), "${1}***"},
	// curl -u user:x, openssl pass:x
	{regexp.MustCompile(`((?:^|\s)(?:-u|--user)\s+[^\s:]*:)\S+`), "${1}***"},
	{regexp.MustCompile(`(\bpass:)\S+`), "${1}***"},
}

var scrubSink string

// BenchmarkScrub scrubs every command line of the corpus (lines=all: with
// and without secrets; lines=ordinary: only the ones with nothing to hide,
// the common case on a host) and reports the average per line, in wall
// time (ns/line) and in the benchmark thread's CPU time (cpu-ns/line).
//
//	go test -run '^$' -bench Scrub -benchmem -count 5 ./exporter/internal/collector/
func BenchmarkScrub(b *testing.B) {
	cases := loadScrubCorpus(b)
	var all, ordinary []string
	for _, c := range cases {
		all = append(all, c.in)
		if c.in == c.want {
			ordinary = append(ordinary, c.in)
		}
	}
	impls := []struct {
		name  string
		scrub func(string) string
	}{
		{"scanner", ScrubCmdline},
		{"regexp", naiveScrub},
	}
	for _, impl := range impls {
		leaked := 0
		for _, c := range cases {
			out := impl.scrub(c.in)
			for _, s := range c.secrets {
				if strings.Contains(out, s) {
					leaked++
				}
			}
		}
		for _, mix := range []struct {
			name  string
			lines []string
		}{{"all", all}, {"ordinary", ordinary}} {
			b.Run("impl="+impl.name+"/lines="+mix.name, func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				n := 0
				cpu0 := testutil.ThreadCPU()
				for b.Loop() {
					for _, l := range mix.lines {
						scrubSink = impl.scrub(l)
					}
					n += len(mix.lines)
				}
				cpu := testutil.ThreadCPU() - cpu0
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/line")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/line")
				b.ReportMetric(float64(leaked), "corpus-secrets-leaked")
			})
		}
	}
}
