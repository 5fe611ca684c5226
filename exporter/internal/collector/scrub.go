package collector

import "strings"

// Command-line scrubbing.
//
// A command line reaches the scrubber as ps shows it: argv joined by single
// spaces (cmdlineString), so a quoted argument such as
// curl -H "Authorization: Bearer x" arrives as several words and the
// scrubber never knows where one argument ended. It reads the words left to
// right, once, without regular expressions, and masks:
//
//   - the value of a flag or variable whose name says it is a secret, in
//     every spelling (--password=x, --password x, -password x, DB_PASSWORD=x,
//     ?token=x&, ,password=x, "apiKey":"x", -Dkeystore.password=x);
//   - credentials in URLs and DSNs (scheme://user:PASS@host,
//     user:PASS@tcp(host)/db) and curl-style user:PASS values;
//   - secret HTTP headers (Authorization and Proxy-Authorization after their
//     scheme, Cookie values, X-API-Key, X-Auth-Token, Private-Token...);
//   - tokens recognised by their shape wherever they stand (ghp_,
//     github_pat_, glpat-, xoxb-, sk_live_, AKIA... and the secret key after
//     it, hvs., JWTs...), keeping their well-known prefix;
//   - short options that carry a password only for the program that defines
//     them (mysql -pX, sshpass -p X, redis-cli -a X, docker login -p X,
//     openssl -k X, curl -u user:X, ldapsearch -w X, sqlcmd -P X, 7z -pX, ...),
//     so ssh -p 2222 and tar -k stay as they are.
//
// Masks: a masked span of 3 bytes or more becomes "***", a shorter one
// becomes one '*' per byte. So the output is never longer than the input
// (the caller bounds command lines by size), and scrubbing its own output
// changes nothing.
//
// What is kept on purpose, because it is not a secret and hiding it would
// make the process list harder to read: file paths and file names given as
// the value of a secret-named flag (--tls-key=/etc/pki/tls.key,
// --password-file=...), openssl's env:/file:/fd: references, shell
// references ($DB_PASSWORD), true/false, and names that only mention a
// secret (--password-stdin, --max-tokens, --authorization-mode, PWD).
// Known limits: a password containing an unencoded '/' inside a URL is cut
// there (RFC 3986 forbids it), and a secret given as a bare positional
// argument of an unknown program cannot be told from any other word.
//
// When nothing matches, ScrubCmdline returns its argument without
// allocating: the scan records spans and builds a new string only at the end.

// span is a byte range [a, b) of the command line to mask.
type span struct{ a, b int }

// prog is the program whose short options are being read: the same letter
// is a password for one program and a port or a switch for another.
type prog uint8

const (
	progNone     prog = iota
	progMySQL         // -pSECRET attached only: "-p db" prompts and db is a database
	progMySQLAdm      // like progMySQL, plus "password NEW"
	progPAny          // -p SECRET or -pSECRET: sshpass, mongo tools, mydumper, rdesktop
	progRedis         // -a SECRET
	progOpenSSL       // -k SECRET, -K HEXKEY
	progCurl          // -u/-U/--user/--proxy-user user:SECRET, -b/--cookie, --oauth2-bearer, -E/--cert file:SECRET
	progLogin         // docker & co: -p SECRET after the word "login"
	progLDAP          // -w SECRET
	progBigP          // -P SECRET: sqlcmd, bcp, ipmitool, zip, unzip
	prog7z            // -pSECRET attached: 7z, rar
	progSMB           // -U user%SECRET
	progLftp          // -u user,SECRET
	progSNMP          // -c COMMUNITY, -A AUTHPASS, -X PRIVPASS
	progKeygen        // ssh-keygen -N/-P PASSPHRASE
	progHtpasswd      // htpasswd -b FILE USER SECRET, -nb USER SECRET
	progRDP           // xfreerdp /p:SECRET
)

// valueKind says which part of a value is the secret.
type valueKind uint8

const (
	kWhole     valueKind = iota // all of it
	kColon                      // user:SECRET
	kPercent                    // user%SECRET
	kComma                      // user,SECRET
	kCookie                     // name=SECRET; name=SECRET (a bare word is a secret too)
	kCookieArg                  // like kCookie, but a bare word is a cookie file
)

type scrubber struct {
	s     string
	spans [8]span // the first spans found, on the stack
	n     int
	more  []span // spans beyond the first 8

	prog      prog
	login     bool // progLogin: the word "login" was seen
	hpN, hpB  bool // htpasswd -n, -b
	pos       int  // positional arguments seen since the program name
	prevSet   bool // the previous word was "set" (aws configure set NAME VALUE)
	akiaEnd   int  // end of the word an AWS access key id ended, or -1
	noQuote   [2]int
	noQuoteOK [2]bool
}

// ScrubCmdline hides secrets in a command line before it leaves the host
// (see the comment at the top of this file for what and how).
func ScrubCmdline(s string) string {
	out, changed := scrubOnce(s)
	// A mask can change how a later pass reads the words around it (a
	// flag name that ended in "-url" no longer does), so a line that had
	// something to hide is scrubbed again until nothing changes: scrubbing
	// is idempotent, which FuzzScrub checks. Each pass only masks more and
	// never lengthens the line; the bound is for safety, not expected.
	for range maxScrubPasses {
		if !changed {
			break
		}
		var next string
		next, changed = scrubOnce(out)
		changed = changed && next != out
		out = next
	}
	return out
}

// maxScrubPasses bounds the passes after the first.
const maxScrubPasses = 4

func scrubOnce(s string) (string, bool) {
	var sc scrubber
	sc.s = s
	sc.akiaEnd = -1
	sc.run()
	if sc.n == 0 {
		return s, false
	}
	return sc.build(), true
}

func (sc *scrubber) run() {
	s := sc.s
	for i := 0; i < len(s); {
		if isSep(s[i]) {
			i++
			continue
		}
		j := wordEnd(s, i)
		next := sc.word(i, j)
		if next <= i {
			next = j
		}
		i = next
	}
}

// build writes the command line with every span masked. Spans may arrive
// out of order or overlapping (a DSN found after a token inside it).
func (sc *scrubber) build() string {
	sp := sc.spans[:sc.n]
	if len(sc.more) > 0 {
		sp = append(append([]span(nil), sp...), sc.more...)
	}
	for i := 1; i < len(sp); i++ {
		for j := i; j > 0 && sp[j].a < sp[j-1].a; j-- {
			sp[j], sp[j-1] = sp[j-1], sp[j]
		}
	}
	var b strings.Builder
	b.Grow(len(sc.s))
	prev := 0
	for i := 0; i < len(sp); {
		a, e := sp[i].a, sp[i].b
		i++
		// Adjacent spans merge: "**" next to "**" would read as one
		// 4-byte secret on a second pass and become "***".
		for i < len(sp) && sp[i].a <= e {
			if sp[i].b > e {
				e = sp[i].b
			}
			i++
		}
		if a < prev {
			a = prev
		}
		if e <= a {
			continue
		}
		b.WriteString(sc.s[prev:a])
		if n := e - a; n >= 3 {
			b.WriteString("***")
		} else {
			b.WriteString("**"[:n])
		}
		prev = e
	}
	b.WriteString(sc.s[prev:])
	return b.String()
}

func (sc *scrubber) mask(a, b int) {
	// Blanks are never masked: they separate words, and a blank turned
	// into '*' would join words a second pass then reads differently
	// (FuzzScrub: `"pw":" "Key":0`).
	for a < b && isBlank(sc.s[a]) {
		a++
	}
	for b > a && isBlank(sc.s[b-1]) {
		b--
	}
	switch {
	case b <= a:
	case sc.n < len(sc.spans):
		sc.spans[sc.n] = span{a, b}
		sc.n++
	default:
		sc.more = append(sc.more, span{a, b})
	}
}

// word scrubs the word s[a:b] and returns where to go on: past b when the
// word took a value from the words after it, inside b when a quoted value
// ended there.
func (sc *scrubber) word(a, b int) int {
	s := sc.s
	w := s[a:b]
	wasSet := sc.prevSet
	sc.prevSet = false
	if sc.akiaEnd >= 0 {
		end := sc.akiaEnd
		sc.akiaEnd = -1
		if onlySeps(s[end:a]) && isAWSSecret(w) {
			sc.mask(a, b)
			return b
		}
	}
	if next, ok := sc.header(a, b); ok {
		return next
	}
	if w[0] == '-' && len(w) > 1 {
		if next, ok := sc.flag(a, b); ok {
			return next
		}
		return sc.inner(a, b)
	}
	if next, ok := sc.bare(a, b, wasSet); ok {
		return next
	}
	return sc.inner(a, b)
}

// header handles a secret HTTP header or JSON key: "Authorization:" or
// "X-API-Key:" ending the word with the value in the next words, or
// "Authorization:Bearer" and "X-Api-Key:abc" in one word.
func (sc *scrubber) header(a, b int) (int, bool) {
	s := sc.s
	w := s[a:b]
	start := 0
	if len(w) > 2 && w[0] == '-' && w[1] == 'H' {
		start = 2 // curl -H"Authorization: ..."
	}
	c := strings.IndexByte(w[start:], ':')
	if c < 0 {
		return 0, false
	}
	c += start
	atEnd := false
	switch {
	case w[len(w)-1] == ':' && !strings.HasSuffix(w, "://"):
		// A trailing colon names the header whose value is the next word,
		// whatever came before it ({"user":"u","token": or x=Cookie:).
		c, atEnd = len(w)-1, true
	case c+1 < len(w) && w[c+1] == '/':
		return 0, false // scheme://
	}
	end := c
	quoted := byte(0)
	if end > start && isQuote(w[end-1]) {
		quoted = w[end-1]
		end--
	}
	ns := end
	for ns > start && isHeaderChar(w[ns-1]) {
		ns--
	}
	if ns == end {
		return 0, false
	}
	if ns > start && strings.IndexByte(`"'{[,(=`, w[ns-1]) < 0 {
		return 0, false
	}
	name := w[ns:end]
	kind := headerKind(name, quoted != 0, atEnd)
	if kind == hdrNone {
		return 0, false
	}
	if ns > start+1 {
		// Whatever came before the name ({"user":"u","token": or
		// --header=) is scrubbed on its own first.
		if r := sc.inner(a+start, a+ns-1); r > a+ns-1 {
			return r, true
		}
	}
	q := byte(0)
	if ns > start && isQuote(w[ns-1]) {
		q = w[ns-1]
	}
	if atEnd {
		va, vb := nextWord(s, b)
		if va < 0 || !valueish(s[va:vb]) {
			return b, true
		}
		return sc.headerValue(kind, q, va, vb), true
	}
	return sc.headerValue(kind, q, a+c+1, b), true
}

type hdrKind uint8

const (
	hdrNone hdrKind = iota
	hdrAuth
	hdrCookie
	hdrValue
)

func headerKind(name string, quoted, atEnd bool) hdrKind {
	switch {
	case strings.EqualFold(name, "authorization"), strings.EqualFold(name, "proxy-authorization"):
		return hdrAuth
	case strings.EqualFold(name, "cookie"), strings.EqualFold(name, "set-cookie"):
		return hdrCookie
	case !isSecretName(name):
		return hdrNone
	case quoted && atEnd:
		return hdrValue // {"password": "x"}
	case quoted:
		return hdrNone // {"password":"x"} is read by inner
	case len(name) > 2 && (name[0] == 'x' || name[0] == 'X') && name[1] == '-':
		return hdrValue // X-API-Key:abc, X-Auth-Token: abc
	case atEnd && strings.ContainsAny(name, "-_"):
		return hdrValue // Private-Token: abc, api_key: abc
	}
	return hdrNone
}

// headerValue masks a header's value starting with the word s[a:b] and
// returns where to go on.
func (sc *scrubber) headerValue(kind hdrKind, q byte, a, b int) int {
	s := sc.s
	switch kind {
	case hdrAuth:
		if isAuthScheme(s[a:b]) {
			va, vb := nextWord(s, b)
			if va < 0 || !valueish(s[va:vb]) {
				return b
			}
			return sc.maskValue(va, vb, q)
		}
		return sc.maskValue(a, b, q)
	case hdrCookie:
		return sc.cookies(a, b, q, false)
	}
	return sc.maskValue(a, b, q)
}

// cookies masks the values of name=value pairs from s[a:b] on, going on to
// the next word while a word ends with ';'. A word without '=' is a secret
// itself in a header and a file name in curl -b.
func (sc *scrubber) cookies(a, b int, q byte, bareIsFile bool) int {
	s := sc.s
	for n := 0; ; n++ {
		end := b
		if q != 0 && end > a && s[end-1] == q {
			end--
		}
		v := s[a:end]
		if strings.IndexByte(v, '=') < 0 {
			if bareIsFile && n == 0 {
				return b
			}
			// The ';' ending the word separates pairs: masked with the
			// value, a second pass would no longer see the pair after it
			// as a cookie (FuzzScrub: "Cookie:; token=;").
			ve := end
			if ve > a && s[ve-1] == ';' {
				ve--
			}
			sc.maskValue(a, ve, 0)
		} else {
			for k := a; k < end; {
				eq := strings.IndexByte(s[k:end], '=')
				if eq < 0 {
					break
				}
				vs := k + eq + 1
				ve := vs
				for ve < end && s[ve] != ';' {
					ve++
				}
				sc.mask(vs, ve)
				k = ve + 1
			}
		}
		if end == a || s[end-1] != ';' {
			return b
		}
		na, nb := nextWord(s, b)
		if na < 0 || !valueish(s[na:nb]) {
			return b
		}
		a, b = na, nb
	}
}

// flag handles a word starting with '-': program-specific short options,
// then any flag whose name is a secret, taking its value from the next word.
func (sc *scrubber) flag(a, b int) (int, bool) {
	if next, ok := sc.progFlag(a, b); ok {
		return next, true
	}
	w := sc.s[a:b]
	if strings.IndexByte(w, '=') >= 0 {
		return 0, false // --name=value: inner
	}
	if isSecretName(w) {
		return sc.takeValue(b, kWhole), true
	}
	return 0, false
}

// progFlag reads the options whose meaning depends on the program.
func (sc *scrubber) progFlag(a, b int) (int, bool) {
	s := sc.s
	w := s[a:b]
	if w[1] == '-' {
		// Long options of our own only for curl and smbclient; the rest
		// are found by name.
		var kind valueKind
		name, _, hasEq := strings.Cut(w[2:], "=")
		switch {
		case sc.prog == progCurl && (name == "user" || name == "proxy-user" || name == "cert" || name == "proxy-cert"):
			kind = kColon
		case sc.prog == progCurl && name == "cookie":
			kind = kCookieArg
		case sc.prog == progCurl && name == "oauth2-bearer":
			kind = kWhole
		case sc.prog == progSMB && name == "user":
			kind = kPercent
		default:
			return 0, false
		}
		if hasEq {
			return sc.maskKind(a+2+len(name)+1, b, kind), true
		}
		return sc.takeValue(b, kind), true
	}
	c := w[1]
	var attached, separate bool
	kind := kWhole
	switch sc.prog {
	case progNone:
		return 0, false
	case progMySQL, progMySQLAdm:
		attached = c == 'p'
	case progPAny:
		attached, separate = c == 'p', c == 'p'
	case progRedis:
		attached, separate = c == 'a', c == 'a'
	case progOpenSSL:
		separate = c == 'k' || c == 'K'
	case progCurl:
		switch c {
		case 'u', 'U', 'E':
			attached, separate, kind = true, true, kColon
		case 'b':
			attached, separate, kind = true, true, kCookieArg
		}
	case progLogin:
		attached, separate = sc.login && c == 'p', sc.login && c == 'p'
	case progLDAP:
		attached, separate = c == 'w', c == 'w'
	case progBigP:
		attached, separate = c == 'P', c == 'P'
	case prog7z:
		attached = c == 'p'
	case progSMB:
		attached, separate, kind = c == 'U', c == 'U', kPercent
	case progLftp:
		attached, separate, kind = c == 'u', c == 'u', kComma
	case progSNMP:
		attached = c == 'c' || c == 'A' || c == 'X'
		separate = attached
	case progKeygen:
		attached = c == 'N' || c == 'P'
		separate = attached
	case progHtpasswd:
		for i := 1; i < len(w); i++ {
			if strings.IndexByte("cnbim25BCdspDvrt", w[i]) < 0 {
				return 0, false // not an htpasswd option cluster
			}
		}
		for i := 1; i < len(w); i++ {
			switch w[i] {
			case 'n':
				sc.hpN = true
			case 'b':
				sc.hpB = true
			}
		}
		if w[len(w)-1] == 'C' {
			// -C COST: the next word is a number, not a positional.
			if _, nb := nextWord(s, b); nb > 0 {
				return nb, true
			}
		}
		return b, true
	}
	switch {
	case len(w) == 2 && separate:
		return sc.takeValue(b, kind), true
	case len(w) > 2 && attached:
		v := a + 2
		if s[v] == '=' {
			v++
		}
		r := sc.maskKind(v, b, kind)
		if isPlainSecretFlag(w[1:]) {
			// -password x: maybe mysql's -p with "assword", maybe a
			// secret flag of a program we do not know; mask both.
			r = sc.takeValue(b, kWhole)
		}
		return r, true
	}
	return 0, false
}

// bare handles a word that is not a flag: program names, positional
// secrets, "Bearer x" and aws configure set NAME VALUE.
func (sc *scrubber) bare(a, b int, wasSet bool) (int, bool) {
	s := sc.s
	w := s[a:b]
	if sc.prog == progHtpasswd && sc.hpB {
		// htpasswd -b FILE USER SECRET (-nb USER SECRET): counted before
		// looking for program names, since FILE may be /etc/htpasswd.
		want := 3
		if sc.hpN {
			want = 2
		}
		if sc.pos < want {
			sc.pos++
			if sc.pos == want {
				sc.mask(a, b)
			}
			return b, true
		}
	}
	if p, ok := progOf(w); ok {
		sc.prog, sc.login, sc.hpN, sc.hpB, sc.pos = p, false, false, false, 0
		return b, true
	}
	switch sc.prog {
	case progMySQLAdm:
		if w == "password" {
			return sc.takeValue(b, kWhole), true
		}
	case progLogin:
		if w == "login" {
			sc.login = true
			return b, true
		}
	case progRDP:
		if len(w) > 3 && (w[0] == '/' || w[0] == '-') && (w[1] == 'p' || w[1] == 'P') && w[2] == ':' {
			sc.mask(a+3, b)
			return b, true
		}
	}
	if w == "set" {
		sc.prevSet = true
		return b, true
	}
	if wasSet && isIdent(w) && strings.ContainsAny(w, "_.") && isSecretName(w) {
		return sc.takeValue(b, kWhole), true
	}
	t := w
	for len(t) > 0 && isQuote(t[0]) {
		t = t[1:]
	}
	if (len(t) == 5 || len(t) == 6) && t[0]|0x20 == 'b' && (strings.EqualFold(t, "bearer") || strings.EqualFold(t, "basic")) {
		va, vb := nextWord(s, b)
		if va >= 0 {
			v := strings.TrimRight(strings.TrimLeft(s[va:vb], `"'`), `"'`)
			if len(v) >= 8 && allClass(v, cToken) {
				return sc.maskValue(va, vb, 0), true
			}
		}
	}
	return 0, false
}

// takeValue masks the word after from when it is a value, not a flag, and
// returns where to go on.
func (sc *scrubber) takeValue(from int, kind valueKind) int {
	va, vb := nextWord(sc.s, from)
	if va < 0 || !valueish(sc.s[va:vb]) {
		return from
	}
	return sc.maskKind(va, vb, kind)
}

func (sc *scrubber) maskKind(a, b int, kind valueKind) int {
	s := sc.s
	if a >= b {
		return b
	}
	var sep byte
	switch kind {
	case kWhole:
		return sc.maskValue(a, b, 0)
	case kCookie, kCookieArg:
		q := byte(0)
		if isQuote(s[a]) {
			q = s[a]
			a++
		}
		return sc.cookies(a, b, q, kind == kCookieArg)
	case kColon:
		sep = ':'
	case kPercent:
		sep = '%'
	case kComma:
		sep = ','
	}
	i := strings.IndexByte(s[a:b], sep)
	if i < 0 {
		return b // a user name alone: the program asks for the password
	}
	end := b
	if isQuote(s[a]) && s[end-1] == s[a] {
		end--
	}
	sc.mask(a+i+1, end)
	return b
}

// maskValue masks the value s[a:b] unless it is plainly not a secret. A
// value opening a quote runs to its closing quote, across words if need be;
// q is a quote opened before the value (-H "X-Api-Key: abc") whose closing
// twin at the end is kept.
func (sc *scrubber) maskValue(a, b int, q byte) int {
	s := sc.s
	if a >= b {
		return b
	}
	if isQuote(s[a]) {
		e := sc.closingQuote(a+1, s[a])
		if e >= 0 {
			if !keepValue(s[a+1 : e]) {
				sc.maskPass(a+1, e)
			}
			return e + 1
		}
		a++
	}
	end := b
	if q != 0 {
		// The quote opened before the value closes it: keep what follows
		// ("Bearer x"} keeps "}).
		if i := strings.LastIndexByte(s[a:b], q); i >= 0 {
			end = a + i
		}
	}
	if !keepValue(s[a:end]) {
		sc.maskPass(a, end)
	}
	return b
}

// maskPass masks a value, keeping openssl's "pass:" prefix.
func (sc *scrubber) maskPass(a, b int) {
	if strings.HasPrefix(sc.s[a:b], "pass:") {
		a += 5
	}
	sc.mask(a, b)
}

// closingQuote finds the quote q closing a value that starts at from,
// skipping backslash escapes, or -1. A failed search is remembered so that
// many unclosed quotes cost one scan, not one each.
func (sc *scrubber) closingQuote(from int, q byte) int {
	qi := 0
	if q == '\'' {
		qi = 1
	}
	if sc.noQuoteOK[qi] && from >= sc.noQuote[qi] {
		return -1
	}
	s := sc.s
	for i := from; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case q:
			return i
		}
	}
	sc.noQuote[qi], sc.noQuoteOK[qi] = from, true
	return -1
}

// inner scrubs inside one word: name=value pairs, "name":"value", URL and
// DSN credentials, and tokens by shape. It returns where to go on.
func (sc *scrubber) inner(a, b int) int {
	s := sc.s
	bound := true // s[k-1] is not a letter or digit: a token may start at k
	for k := a; k < b; k++ {
		c := s[k]
		cl := charClass[c]
		if cl&cAlnum != 0 {
			// The common case: one table load per byte.
			if bound && cl&cShapeStart != 0 {
				if e := sc.shape(k, b); e > k {
					k = e - 1
				}
			}
			bound = false
			continue
		}
		r := -1
		switch c {
		case '=':
			if e, ok := sc.assign(a, k, b); ok {
				r = e
			}
		case ':':
			switch {
			case k+2 < b && s[k+1] == '/' && s[k+2] == '/':
				r = sc.url(k+3, b)
			case k > a+1 && s[k-1] == '"':
				if e, ok := sc.jsonPair(a, k, b); ok {
					r = e
				}
			}
		case '@':
			if e := sc.dsn(a, k, b); e > k {
				r = e
			}
		}
		switch {
		case r > b:
			return r
		case r > k:
			k = r - 1
			bound = charClass[s[k]]&cAlnum == 0
		default:
			bound = true
		}
	}
	return b
}

// assign masks the value of name=value when the name is a secret. How far
// the value runs depends on what stands before the name: a query string
// (?token=x&) ends at '&', a mount option list (,password=x,) at ',', a
// connection string (;Password=x;) at ';', a whole argument at its end.
func (sc *scrubber) assign(a, eq, b int) (int, bool) {
	s := sc.s
	ns := eq
	for ns > a && charClass[s[ns-1]]&cName != 0 {
		ns--
	}
	if ns == eq || !isSecretName(s[ns:eq]) {
		return 0, false
	}
	v := eq + 1
	if v >= b {
		return b, true
	}
	var d byte
	if ns > a {
		d = s[ns-1]
	}
	var stop1, stop2 byte
	switch d {
	case '?', '&', '#':
		stop1, stop2 = '&', '#'
	case ',':
		stop1, stop2 = ',', ','
	case ';':
		stop1, stop2 = ';', ';'
	default:
		q := byte(0)
		if isQuote(d) {
			q = d
		}
		return sc.maskValue(v, b, q), true
	}
	end := v
	for end < b && s[end] != stop1 && s[end] != stop2 {
		end++
	}
	sc.maskValue(v, end, 0)
	return end, true
}

// jsonPair masks "name":"value" or "name":123 inside a word; k is the colon.
func (sc *scrubber) jsonPair(a, k, b int) (int, bool) {
	s := sc.s
	q := strings.LastIndexByte(s[a:k-1], '"')
	if q < 0 || !isSecretName(s[a+q+1:k-1]) {
		return 0, false
	}
	v := k + 1
	if v >= b {
		return b, true
	}
	if s[v] == '"' {
		return sc.maskValue(v, b, 0), true
	}
	end := v
	for end < b && s[end] != ',' && s[end] != '}' {
		end++
	}
	sc.maskValue(v, end, 0)
	return end, true
}

// url masks the password of scheme://user:password@host; start is the
// authority's first byte. A user name that looks like a token is masked
// too (https://TOKEN@github.com).
func (sc *scrubber) url(start, b int) int {
	s := sc.s
	ae := start
	for ae < b && s[ae] != '/' && s[ae] != '?' && s[ae] != '#' {
		ae++
	}
	at := strings.LastIndexByte(s[start:ae], '@')
	if at < 0 {
		return start
	}
	at += start
	c := strings.IndexByte(s[start:at], ':')
	user := s[start:at]
	if c >= 0 {
		user = s[start : start+c]
		sc.mask(start+c+1, at)
	}
	if len(user) >= 20 && allClass(user, cURL) && hasDigit(user) && hasLetter(user) {
		sc.mask(start, start+len(user))
	} else {
		sc.shapes(start, start+len(user))
	}
	return at + 1
}

// dsn masks the password of user:password@host without a scheme, as Go's
// MySQL driver writes it (root:pw@tcp(db:3306)/app). k is the '@'.
func (sc *scrubber) dsn(a, k, b int) int {
	s := sc.s
	st := k
	for st > a && charClass[s[st-1]]&cDSN != 0 {
		st--
	}
	if st > a && (s[st-1] == '/' || s[st-1] == '@') {
		return k
	}
	c := strings.IndexByte(s[st:k], ':')
	if c < 0 || st+c+1 == k || !allClass(s[st:st+c], cUser) {
		return k
	}
	rest := s[k+1 : b]
	if strings.HasPrefix(rest, "sha256:") || strings.HasPrefix(rest, "sha512:") || strings.HasPrefix(rest, "sha384:") {
		return k // image:tag@sha256:digest
	}
	// A password may hold '@': the last one before the address is the end.
	e := k
	for i := k + 1; i < b && s[i] != '(' && s[i] != '/'; i++ {
		if s[i] == '@' {
			e = i
		}
	}
	sc.mask(st+c+1, e)
	return e + 1
}

// shapes masks every token recognised by its shape in s[a:b].
func (sc *scrubber) shapes(a, b int) {
	s := sc.s
	for k := a; k < b; k++ {
		if charClass[s[k]]&cShapeStart != 0 && (k == a || charClass[s[k-1]]&cAlnum == 0) {
			if e := sc.shape(k, b); e > k {
				k = e - 1
			}
		}
	}
}

// shape masks a token recognised by its well-known prefix at s[k:], keeping
// the prefix, and returns its end, or k when there is none. Minimum lengths
// are lower than the real ones where the prefix alone is telling.
func (sc *scrubber) shape(k, b int) int {
	s := sc.s[k:b]
	switch s[0] {
	case 'g':
		switch {
		case len(s) > 4 && s[1] == 'h' && s[3] == '_' && strings.IndexByte("pousr", s[2]) >= 0:
			return sc.body(k, 4, b, cAlnum, 8, false)
		case strings.HasPrefix(s, "github_pat_"):
			return sc.body(k, 11, b, cWord, 8, false)
		case strings.HasPrefix(s, "glpat-"), strings.HasPrefix(s, "glptt-"):
			return sc.body(k, 6, b, cURL, 8, false)
		case strings.HasPrefix(s, "gldt-"), strings.HasPrefix(s, "glrt-"):
			return sc.body(k, 5, b, cURL, 8, false)
		}
	case 'x':
		switch {
		case len(s) > 5 && strings.HasPrefix(s, "xox") && s[4] == '-' && strings.IndexByte("abeoprs", s[3]) >= 0:
			return sc.body(k, 5, b, cAlnumDash, 8, false)
		case strings.HasPrefix(s, "xapp-"):
			return sc.body(k, 5, b, cAlnumDash, 8, false)
		}
	case 's':
		switch {
		case strings.HasPrefix(s, "sk_live_"), strings.HasPrefix(s, "sk_test_"):
			return sc.body(k, 8, b, cAlnum, 8, false)
		case strings.HasPrefix(s, "sk-"):
			return sc.body(k, 3, b, cURL, 20, true)
		}
	case 'r':
		if strings.HasPrefix(s, "rk_live_") || strings.HasPrefix(s, "rk_test_") {
			return sc.body(k, 8, b, cAlnum, 8, false)
		}
	case 'w':
		if strings.HasPrefix(s, "whsec_") {
			return sc.body(k, 6, b, cAlnum, 8, false)
		}
	case 'A':
		if strings.HasPrefix(s, "AKIA") || strings.HasPrefix(s, "ASIA") {
			if len(s) < 20 || !allClass(s[4:20], cUpperDigit) || len(s) > 20 && charClass[s[20]]&cAlnum != 0 {
				return k
			}
			sc.mask(k+4, k+20)
			switch {
			case len(s) == 20:
				sc.akiaEnd = b // the secret key may be the next word
			case s[20] == ':':
				sc.mask(k+21, b) // AKIA...:secret
				return b
			}
			return k + 20
		}
		if strings.HasPrefix(s, "AIza") {
			return sc.body(k, 4, b, cURL, 30, false)
		}
	case 'h':
		switch {
		case len(s) > 4 && s[1] == 'v' && s[3] == '.' && strings.IndexByte("bsr", s[2]) >= 0:
			return sc.body(k, 4, b, cURL, 8, false)
		case strings.HasPrefix(s, "hf_"):
			return sc.body(k, 3, b, cAlnum, 30, false)
		case strings.HasPrefix(s, "hooks.slack.com/services/"):
			return sc.body(k, 25, b, cAlnumSlash, 8, false)
		}
	case 'e':
		if strings.HasPrefix(s, "eyJ") {
			return sc.jwt(k, b)
		}
	case 'n':
		if strings.HasPrefix(s, "npm_") {
			return sc.body(k, 4, b, cAlnum, 36, false)
		}
	case 'p':
		switch {
		case strings.HasPrefix(s, "pass:"):
			sc.mask(k+5, b) // openssl -passin pass:SECRET
			return b
		case strings.HasPrefix(s, "pypi-"):
			return sc.body(k, 5, b, cURL, 20, false)
		}
	case 'y':
		if strings.HasPrefix(s, "ya29.") {
			return sc.body(k, 5, b, cURL, 20, false)
		}
	case 'S':
		if strings.HasPrefix(s, "SG.") {
			return sc.body(k, 3, b, cURLDot, 20, false)
		}
	case 'G':
		if strings.HasPrefix(s, "GR1348941") {
			return sc.body(k, 9, b, cURL, 8, false)
		}
	case 'd':
		if strings.HasPrefix(s, "dop_v1_") {
			return sc.body(k, 7, b, cAlnum, 16, false)
		}
	}
	return k
}

// body masks the run of class bytes after a prefix of n bytes at k when
// it has at least min bytes (and a digit, if digit is set).
func (sc *scrubber) body(k, n, b int, class uint16, min int, digit bool) int {
	s := sc.s
	e := k + n
	for e < b && charClass[s[e]]&class != 0 {
		e++
	}
	if e-(k+n) < min || digit && !hasDigit(s[k+n:e]) {
		return k
	}
	sc.mask(k+n, e)
	return e
}

// jwt masks header.payload[.signature] after "eyJ".
func (sc *scrubber) jwt(k, b int) int {
	s := sc.s
	e := k + 3
	for e < b && charClass[s[e]]&cURL != 0 {
		e++
	}
	if e-k < 10 || e >= b || s[e] != '.' {
		return k
	}
	for part := 0; part < 2 && e < b && s[e] == '.'; part++ {
		e++
		for e < b && charClass[s[e]]&cURL != 0 {
			e++
		}
	}
	sc.mask(k+3, e)
	return e
}

// isSecretName reports whether a flag, variable, key or header name says
// its value is a secret. Any segment may say so (segments split at - _ .
// and camelCase: db-password, PGPASSWORD, keyStorePassword, MYSQL_PWD,
// --key, REDISCLI_AUTH), unless the last segment says the value only points
// at or describes the secret (--password-file, --key-id, --token-ttl,
// --authorization-mode) or the first one turns it off or counts
// (--no-password, --max-tokens, --public-key).
func isSecretName(name string) bool {
	for len(name) > 0 && name[0] == '-' {
		name = name[1:]
	}
	if len(name) < 2 {
		return false
	}
	if len(name) > 128 {
		name = name[len(name)-128:]
	}
	if name == "PWD" || name == "OLDPWD" {
		return false // the shell's working directory
	}
	var lb [128]byte
	l := lb[:len(name)]
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		l[i] = c
	}
	secret := hasSecretWord(l)
	var first, last []byte
	start := 0
	for i := 0; i <= len(name); i++ {
		sep := false
		if i < len(name) {
			c := name[i]
			sep = c == '_' || c == '.' || c == '-'
			camel := i > 0 && 'A' <= c && c <= 'Z' && 'a' <= name[i-1] && name[i-1] <= 'z'
			if !sep && !camel {
				continue
			}
		}
		if i > start {
			seg := l[start:i]
			if first == nil {
				first = seg
			}
			last = seg
			if !secret {
				switch string(seg) {
				case "pass", "pwd", "pw", "passwd", "key", "auth", "authorization", "creds", "psk", "pat":
					secret = true
				}
			}
		}
		start = i
		if sep {
			start = i + 1
		}
	}
	if !secret {
		return false
	}
	switch string(last) {
	case "file", "files", "path", "dir", "stdin", "fd", "env", "mode", "type", "method",
		"ttl", "length", "len", "name", "id", "url", "uri", "endpoint", "host", "hostname",
		"port", "user", "username", "header", "prompt", "helper", "enabled", "disabled",
		"required", "format", "provider", "policy", "realm", "size", "bits", "timeout",
		"interval", "algorithm", "algo", "jar", "count", "store", "through", "thru",
		"location", "source", "prefix", "command", "cmd", "secure", "domain", "samesite",
		"authentication", "encryption", "encoding", "scheme":
		return false
	}
	switch string(first) {
	case "no", "max", "min", "num", "skip", "disable", "enable", "use", "allow", "show",
		"print", "public", "pub":
		return false
	}
	return true
}

// isPlainSecretFlag reports whether a single-dash option spells a whole
// secret word (-password, -token), which programs with Go-style flags use.
func isPlainSecretFlag(name string) bool {
	for _, w := range [...]string{"password", "passwd", "passphrase", "pass", "pwd", "token",
		"secret", "key", "auth", "apikey", "api-key", "api_key", "authtoken", "auth-token"} {
		if strings.EqualFold(name, w) {
			return true
		}
	}
	return false
}

// hasSecretWord reports whether a lower-cased name holds, anywhere, a word
// that names a secret (tokenizer excepted).
func hasSecretWord(l []byte) bool {
	for i := 0; i+5 <= len(l); i++ {
		r := l[i:]
		switch l[i] {
		case 'p':
			if hasPrefixB(r, "passw") || hasPrefixB(r, "passphrase") || hasPrefixB(r, "privatekey") {
				return true
			}
		case 's':
			if hasPrefixB(r, "secret") {
				return true
			}
		case 't':
			if hasPrefixB(r, "token") && !hasPrefixB(r[5:], "iz") {
				return true
			}
		case 'c':
			if hasPrefixB(r, "credential") || hasPrefixB(r, "cookie") {
				return true
			}
		case 'a':
			if hasPrefixB(r, "apikey") || hasPrefixB(r, "accesskey") || hasPrefixB(r, "authkey") {
				return true
			}
		case 'r':
			if hasPrefixB(r, "requirepass") {
				return true
			}
		case 'm':
			if hasPrefixB(r, "masterauth") || hasPrefixB(r, "masterpass") {
				return true
			}
		}
	}
	return false
}

func hasPrefixB(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// keepValue reports whether a secret-named flag's value is plainly not the
// secret itself but a pointer to it or a switch.
func keepValue(v string) bool {
	if v == "" || v == "-" || v == "stdin" || strings.EqualFold(v, "true") || strings.EqualFold(v, "false") {
		return true
	}
	if strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:") || strings.HasPrefix(v, "fd:") {
		return true // openssl's -pass env:VAR, file:PATH, fd:N
	}
	if v[0] == '$' {
		// A shell reference, expanded later by the shell it was given to.
		r := v[1:]
		if len(r) > 2 && r[0] == '{' && r[len(r)-1] == '}' {
			r = r[1 : len(r)-1]
		}
		return len(r) > 0 && isIdent(r) && (r[0] < '0' || r[0] > '9')
	}
	return isPathValue(v)
}

// isPathValue: a lower-case path (/etc/pki/tls.key, ./token.txt) or a file
// name with a key or config extension. A random secret has upper-case
// letters and no dot, so it is not taken for one.
func isPathValue(v string) bool {
	if !allClass(v, cPath) {
		return false
	}
	if v[0] == '/' || strings.HasPrefix(v, "./") || strings.HasPrefix(v, "../") || strings.HasPrefix(v, "~/") {
		return true
	}
	dot := strings.LastIndexByte(v, '.')
	if dot <= 0 {
		return false
	}
	switch v[dot+1:] {
	case "pem", "key", "crt", "cer", "der", "p12", "pfx", "jks", "json", "txt", "asc", "gpg",
		"pub", "yaml", "yml", "conf", "cfg", "env", "ini", "toml", "kdbx":
		return true
	}
	return false
}

func isAuthScheme(w string) bool {
	w = strings.Trim(w, `"'`)
	for _, s := range [...]string{"bearer", "basic", "token", "digest", "negotiate", "ntlm",
		"apikey", "api-key", "key", "sso-key", "otp", "dpop", "aws4-hmac-sha256", "hoba", "mutual", "vapid"} {
		if strings.EqualFold(w, s) {
			return true
		}
	}
	return false
}

// isAWSSecret: 40 base64 characters, mixed case with a digit, the shape of
// an AWS secret access key following its key id.
func isAWSSecret(w string) bool {
	w = strings.Trim(w, `"'`)
	var upper, lower bool
	for i := 0; i < len(w); i++ {
		upper = upper || 'A' <= w[i] && w[i] <= 'Z'
		lower = lower || 'a' <= w[i] && w[i] <= 'z'
	}
	return len(w) >= 30 && len(w) <= 50 && allClass(w, cB64) && hasDigit(w) && upper && lower
}

// progOf returns the program a word names, if it is one whose options we
// read. Programs that reuse those letters for harmless options (ssh -p
// PORT, sudo -p PROMPT) reset the context.
func progOf(w string) (prog, bool) {
	for len(w) > 0 && (isQuote(w[0]) || w[0] == '(') {
		w = w[1:]
	}
	if len(w) == 0 || len(w) > 96 || !allClass(w, cProgChar) {
		return progNone, false
	}
	if i := strings.LastIndexByte(w, '/'); i >= 0 {
		w = w[i+1:]
	}
	if len(w) < 2 || len(w) > 24 {
		return progNone, false
	}
	switch w {
	case "mysql", "mysqldump", "mysqlimport", "mysqlcheck", "mysqlpump", "mysqlslap", "mysqlshow",
		"mysqlbinlog", "mysqlsh", "mysql_upgrade", "mariadb", "mariadb-dump", "mariadb-import",
		"mariadb-check", "mariadb-show", "mariadb-slap", "mariadb-binlog", "mariadb-upgrade":
		return progMySQL, true
	case "mysqladmin", "mariadb-admin":
		return progMySQLAdm, true
	case "sshpass", "mongo", "mongosh", "mongodump", "mongorestore", "mongoexport", "mongoimport",
		"mongostat", "mongotop", "mongofiles", "mydumper", "myloader", "rdesktop":
		return progPAny, true
	case "redis-cli", "redis-benchmark", "keydb-cli", "valkey-cli", "valkey-benchmark":
		return progRedis, true
	case "openssl":
		return progOpenSSL, true
	case "curl":
		return progCurl, true
	case "docker", "podman", "nerdctl", "buildah", "skopeo", "helm", "oras", "crane", "cf",
		"argocd", "oc", "az", "regctl":
		return progLogin, true
	case "ldapsearch", "ldapadd", "ldapmodify", "ldapdelete", "ldapwhoami", "ldappasswd",
		"ldapcompare", "ldapmodrdn", "ldapexop":
		return progLDAP, true
	case "sqlcmd", "bcp", "osql", "ipmitool", "zip", "unzip", "zipcloak":
		return progBigP, true
	case "7z", "7za", "7zr", "7zz", "rar", "unrar":
		return prog7z, true
	case "smbclient", "rpcclient", "smbcacls", "smbget":
		return progSMB, true
	case "lftp":
		return progLftp, true
	case "snmpwalk", "snmpget", "snmpbulkwalk", "snmpbulkget", "snmpset", "snmptrap",
		"snmptable", "snmpgetnext", "snmpdf", "snmpstatus":
		return progSNMP, true
	case "ssh-keygen":
		return progKeygen, true
	case "htpasswd":
		return progHtpasswd, true
	case "xfreerdp", "xfreerdp3", "wlfreerdp", "sdl-freerdp", "sdl-freerdp3":
		return progRDP, true
	case "ssh", "scp", "sftp", "rsync", "sudo", "su", "sh", "bash", "dash", "zsh", "env",
		"nohup", "timeout", "nice", "exec", "xargs":
		return progNone, true
	}
	return progNone, false
}

// valueish reports whether a word can be a flag's value: not another flag
// (--x, -x, -x=1) nor a lone dash. A value may start with a dash
// (--token -abc123).
func valueish(w string) bool {
	if len(w) == 0 {
		return false
	}
	if w[0] != '-' {
		return true
	}
	return len(w) > 2 && w[1] != '-' && w[2] != '='
}

func isSep(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }

func isQuote(c byte) bool { return c == '"' || c == '\'' }

func wordEnd(s string, i int) int {
	for i < len(s) && !isSep(s[i]) {
		i++
	}
	return i
}

// nextWord returns the bounds of the first word at or after from, or -1.
func nextWord(s string, from int) (int, int) {
	for from < len(s) && isSep(s[from]) {
		from++
	}
	if from >= len(s) {
		return -1, -1
	}
	return from, wordEnd(s, from)
}

func onlySeps(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isSep(s[i]) {
			return false
		}
	}
	return true
}

func isHeaderChar(c byte) bool { return charClass[c]&cURL != 0 }

func isIdent(s string) bool { return allClass(s, cWord|cDot) }

func allClass(s string, class uint16) bool {
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&class == 0 {
			return false
		}
	}
	return true
}

func hasDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			return true
		}
	}
	return false
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; 'a' <= c && c <= 'z' {
			return true
		}
	}
	return false
}

// Byte classes, one bit each, so that a scan is one table load per byte.
const (
	cAlnum      uint16 = 1 << iota // A-Z a-z 0-9
	cUnder                         // _
	cDash                          // -
	cDotBit                        // .
	cSlash                         // /
	cB64Extra                      // + / =
	cUpperDigit                    // A-Z 0-9
	cName                          // A-Z a-z 0-9 _ . -  (a name before '=')
	cDSN                           // what user:password may hold before '@'
	cUser                          // what the user part of a DSN may hold
	cPathBit                       // a-z 0-9 . _ - / ~ + :
	cProgChar                      // what a program path may hold
	cShapeStart                    // first bytes of token prefixes

	cWord       = cAlnum | cUnder
	cURL        = cAlnum | cUnder | cDash
	cURLDot     = cURL | cDotBit
	cDot        = cDotBit
	cAlnumDash  = cAlnum | cDash
	cAlnumSlash = cAlnum | cSlash
	cB64        = cAlnum | cB64Extra
	cToken      = cURLDot | cB64Extra | cTilde
	cPath       = cPathBit
	cTilde      = cSlash // ~ shares the slash bit for token scans
)

var charClass = func() (t [256]uint16) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		lower := 'a' <= b && b <= 'z'
		upper := 'A' <= b && b <= 'Z'
		digit := '0' <= b && b <= '9'
		if lower || upper || digit {
			t[c] |= cAlnum | cName | cDSN | cUser | cProgChar
		}
		if upper || digit {
			t[c] |= cUpperDigit
		}
		if lower || digit {
			t[c] |= cPathBit
		}
		switch b {
		case '_':
			t[c] |= cUnder | cName | cDSN | cUser | cPathBit | cProgChar
		case '-':
			t[c] |= cDash | cName | cDSN | cUser | cPathBit | cProgChar
		case '.':
			t[c] |= cDotBit | cName | cDSN | cUser | cPathBit | cProgChar
		case '/':
			t[c] |= cSlash | cB64Extra | cPathBit | cProgChar
		case '+':
			t[c] |= cB64Extra | cDSN | cUser | cPathBit | cProgChar
		case '=':
			t[c] |= cB64Extra
		case '~':
			t[c] |= cSlash | cPathBit | cDSN
		case ':':
			t[c] |= cPathBit | cDSN // Xorg -auth /var/run/lightdm/root/:0
		case '%':
			t[c] |= cDSN | cUser
		case ' ', '\t', '\n', '@', '"', '\'', ',', ';', '(', '?', '&', '<', '[':
			// ends a DSN's user:password going backwards
		default:
			if c >= 0x21 && c < 0x7f || c >= 0x80 {
				t[c] |= cDSN
			}
		}
		switch b {
		case 'g', 'x', 's', 'r', 'w', 'A', 'h', 'e', 'n', 'p', 'y', 'S', 'G', 'd':
			t[c] |= cShapeStart
		}
	}
	return t
}()

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
