package collector

import (
	"strings"
	"testing"
)

// scrubTemplates are secret-bearing command lines; %s is where FuzzScrub
// puts a generated secret, which must not survive scrubbing.
var scrubTemplates = []string{
	"mysql -p%s",
	"mysql -u root -p%s db",
	"mysqldump -uroot -p%s --all-databases",
	"redis-cli -h 127.0.0.1 -a %s ping",
	"sshpass -p %s ssh -p 2222 host",
	"sshpass -p%s scp a b:",
	"docker login -u ci -p %s registry.example.com",
	"podman login -p=%s quay.io",
	"openssl enc -aes-256-cbc -pass pass:%s -in a -out b",
	"openssl rsa -in k.pem -passin pass:%s",
	"openssl enc -d -k %s -in a",
	"app --key %s --listen :80",
	"app --auth %s",
	"app --token -%s --verbose",
	"app --password=%s",
	"app --password %s",
	"app -password %s",
	"app --db-password=%s --port=1",
	"curl -H X-API-KEY: %s https://api",
	`sh -c curl -H "X-Auth-Token: %s" https://api`,
	"curl -H Cookie: session=%s; theme=dark https://x",
	"curl -H Authorization: Bearer %s https://api",
	"curl -H Authorization: Basic %s https://api",
	"http GET api Authorization:Bearer %s",
	"curl -u admin:%s https://host",
	"curl --user admin:%s https://host",
	"app --dsn=root:%s@tcp(127.0.0.1:3306)/app",
	"psql postgres://app:%s@db:5432/app",
	"mongosh mongodb+srv://admin:%s@cluster0.example.net/db",
	"celery --broker=amqp://guest:%s@rabbit:5672//",
	"app --cache redis://:%s@cache:6379/0",
	"sync ghp_%s",
	"release github_pat_%s",
	"runner glpat-%s",
	"bot xoxb-%s",
	"bot xoxp-%s",
	"charge sk_live_%s",
	"vault login hvs.%s",
	"jwt eyJhbGciOiJIUzI1NiJ9.%s.c2ln",
	"env DB_PASSWORD=%s ./run",
	"env GITHUB_TOKEN=%s gh pr list",
	"env AWS_SECRET_ACCESS_KEY=%s aws s3 ls",
	"env MY_API_KEY=%s ./x",
	"env APP_SECRET=%s ./x",
	"curl https://host/p?token=%s&x=1",
	"java -Dspring.datasource.password=%s -jar app.jar",
	"ldapsearch -x -w %s -b dc=x",
	"sqlcmd -S db -U sa -P %s",
	"7z a -p%s x.7z",
	"snmpwalk -v2c -c %s 10.0.0.1",
	"htpasswd -b /etc/htpasswd admin %s",
	"smbclient //fs/share -U alice%%%s",
	`app -e {"password":"%s"}`,
	`app -e {"apiKey": "%s"}`,
	"mount -o username=bob,password=%s,vers=3.0 //a /b",
	"aws configure set aws_secret_access_key %s",
}

// fuzzSecret turns fuzzer bytes into a secret of 8 to 40 letters and digits.
func fuzzSecret(raw []byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	n := len(raw)
	if n > 40 {
		n = 40
	}
	if n < 8 {
		n = 8
	}
	b := make([]byte, n)
	for i := range b {
		c := byte(i * 7)
		if len(raw) > 0 {
			c = raw[i%len(raw)] + byte(i/len(raw))*13
		}
		b[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(b)
}

// FuzzScrub: for any input, scrubbing never panics, never makes the line
// longer and changes nothing the second time; and a generated secret put
// into any template of scrubTemplates, alone or next to an ordinary command
// line of the corpus, never survives.
func FuzzScrub(f *testing.F) {
	cases := loadScrubCorpus(f)
	var ordinary []string
	for _, c := range cases {
		if c.in == c.want {
			ordinary = append(ordinary, c.in)
		}
	}
	for i, c := range cases {
		f.Add(c.in, uint8(i), uint16(i), []byte(c.in))
	}
	f.Fuzz(func(t *testing.T, in string, tmpl uint8, ctx uint16, raw []byte) {
		out := ScrubCmdline(in)
		if len(out) > len(in) {
			t.Fatalf("output longer than input: %q -> %q", in, out)
		}
		if again := ScrubCmdline(out); again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", in, out, again)
		}

		secret := fuzzSecret(raw)
		tm := scrubTemplates[int(tmpl)%len(scrubTemplates)]
		line := strings.Replace(tm, "%s", secret, 1)
		line = strings.ReplaceAll(line, "%%", "%")
		skeleton := strings.ReplaceAll(strings.Replace(tm, "%s", "\x00", 1), "%%", "%")
		switch other := ordinary[int(ctx/3)%len(ordinary)]; ctx % 3 {
		case 1:
			line, skeleton = other+" "+line, other+" "+skeleton
		case 2:
			line, skeleton = line+" "+other, skeleton+" "+other
		}
		if strings.Contains(skeleton, secret) {
			return // the secret is spelled by the template itself
		}
		got := ScrubCmdline(line)
		if strings.Contains(got, secret) {
			t.Fatalf("secret %q survived: %q -> %q", secret, line, got)
		}
		if len(got) > len(line) {
			t.Fatalf("output longer than input: %q -> %q", line, got)
		}
		if again := ScrubCmdline(got); again != got {
			t.Fatalf("not idempotent: %q -> %q -> %q", line, got, again)
		}
	})
}
