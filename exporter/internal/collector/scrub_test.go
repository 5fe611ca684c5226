package collector

import (
	"strings"
	"testing"
)

func TestScrubCmdline(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := ScrubCmdline(in); got != want {
			t.Fatalf("ScrubCmdline(%q)\n got %q\nwant %q", in, got, want)
		}
	}
	// Nothing secret: unchanged.
	f("", "")
	f("/usr/sbin/sshd -D", "/usr/sbin/sshd -D")
	f("nginx: worker process", "nginx: worker process")
	f("rsync --bypass=1 --compass=north", "rsync --bypass=1 --compass=north")
	f("app --password-less-mode", "app --password-less-mode")
	f("app --listen=:8080 --debug", "app --listen=:8080 --debug")

	// --flag=value
	f("mysqld --password=hunter2 --port=3306", "mysqld --password=*** --port=3306")
	f("app --db-password=p@ss:w0rd", "app --db-password=***")
	f("app -password=x", "app -password=***")
	f("app --api-key=AKIA123 --apikey=1 --api_key=2", "app --api-key=*** --apikey=*** --api_key=***")
	f("app --client-secret=abc --access-key=def", "app --client-secret=*** --access-key=***")
	f("app --pass=x --pwd=y", "app --pass=*** --pwd=***")
	f("app --password=", "app --password=") // nothing to hide

	// --flag value
	f("mysql --password hunter2 db", "mysql --password *** db")
	f("app --token abc.def.ghi --verbose", "app --token *** --verbose")
	f("app --password --verbose", "app --password --verbose") // next word is a flag
	f("openssl enc -pass pass:secret", "openssl enc -pass ***")

	// NAME=value variables (env-style arguments)
	f("env AWS_SECRET_ACCESS_KEY=wJalr/K7MDENG python x.py", "env AWS_SECRET_ACCESS_KEY=*** python x.py")
	f("env GITHUB_TOKEN=ghp_123 DB_PASSWORD=x MYSQL_PWD=y PGPASSWORD=z", "env GITHUB_TOKEN=*** DB_PASSWORD=*** MYSQL_PWD=*** PGPASSWORD=***")
	f("env MY_API_KEY=k1 OAUTH_CLIENT_SECRET=s1 LANG=C", "env MY_API_KEY=*** OAUTH_CLIENT_SECRET=*** LANG=C")
	f("token=abc", "token=***")

	// URLs with credentials keep the user and host.
	f("psql postgres://app:s3cret@db.internal:5432/app", "psql postgres://app:***@db.internal:5432/app")
	f("git clone https://user:ghp_abc@github.com/o/r.git", "git clone https://user:***@github.com/o/r.git")
	f("redis-cli -u redis://:pw@cache:6379", "redis-cli -u redis://:***@cache:6379")
	f("curl https://example.com/a@b", "curl https://example.com/a@b") // no credentials
	f("curl https://host/path?token=abc&x=1&api_key=zzz", "curl https://host/path?token=***&x=1&api_key=***")

	// Authorization headers and curl's -u.
	f("curl -H Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y https://api", "curl -H Authorization: Bearer *** https://api")
	f("curl -u admin:hunter2 https://host", "curl -u admin:*** https://host")
	f("curl --user admin:hunter2 https://host", "curl --user admin:*** https://host")

	// JSON arguments.
	f(`app -e {"db_password":"x\"y","user":"u","apiKey": "k"}`, `app -e {"db_password":"***","user":"u","apiKey": "***"}`)
	f(`app -e {"password":""}`, `app -e {"password":""}`)

	// Hostile text passes through unharmed apart from the secrets.
	f("\xff\xfe --token=\xff x", "\xff\xfe --token=*** x")

	// Case does not matter.
	f("app --PASSWORD=x --Secret=y", "app --PASSWORD=*** --Secret=***")
}

// FuzzScrubCmdline: scrubbing never panics, is idempotent, and never lets
// a planted password through.
func FuzzScrubCmdline(f *testing.F) {
	for _, s := range []string{"", "a --password=x", "https://u:p@h", "env TOKEN=1", "\xff\xfe --token \x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := ScrubCmdline(s)
		if twice := ScrubCmdline(once); twice != once {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, once, twice)
		}
		const planted = "Zq9PlantedSecretZq9"
		if strings.Contains(s, planted) {
			return
		}
		in := s + " --password=" + planted
		if out := ScrubCmdline(in); strings.Contains(out, planted) {
			t.Fatalf("planted secret kept: %q -> %q", in, out)
		}
	})
}
