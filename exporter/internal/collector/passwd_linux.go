package collector

// User names from a passwd(5) file below --path.rootfs. In a container the
// exporter's own /etc/passwd is not the host's (the image is built FROM
// scratch and has none), so os/user would show every user as a number;
// the host's file is read instead, and parsed here because the file is
// the host's and so, like process names, not ours to trust.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// maxPasswdSize bounds what is read of a passwd file: a host with 100,000
// local users has a file of about 7 MiB. Beyond the bound the rest is
// ignored (those users show as numbers) rather than read into memory.
const maxPasswdSize = 16 << 20

// maxUserName is LOGIN_NAME_MAX. A longer "name" is not a user Linux can
// log in as; it is shown as its uid rather than made into a label or a
// table cell megabytes wide.
const maxUserName = 256

// parsePasswd maps uids to user names from the text of a passwd file,
// following the rules of glibc's and Go's own parsers: blank lines and
// lines starting with '#' are skipped, as are lines with fewer than seven
// colon-separated fields, NIS compat entries ("+name", "-name"), and uids
// or gids that are not decimal numbers. When a uid appears twice the first
// line wins, as getpwuid answers. Names that are not valid UTF-8, hold
// control characters or exceed maxUserName are skipped, so such a uid is
// shown as its number.
func parsePasswd(b []byte) map[uint32]string {
	names := map[uint32]string{}
	for len(b) > 0 {
		var line []byte
		line, b = cutLine(b)
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		// name:password:uid:gid:gecos:home:shell
		name, rest, _ := bytes.Cut(line, []byte(":"))
		if bytes.Count(rest, []byte(":")) < 5 {
			continue
		}
		_, rest, _ = bytes.Cut(rest, []byte(":")) // password
		uidField, rest, _ := bytes.Cut(rest, []byte(":"))
		gidField, _, _ := bytes.Cut(rest, []byte(":"))
		if !validUserName(name) || !isDecimal(gidField) {
			continue
		}
		uid, ok := parseID(uidField)
		if !ok {
			continue
		}
		if _, dup := names[uid]; !dup {
			names[uid] = string(name)
		}
	}
	return names
}

// parseID parses a uid: decimal digits only (no sign, no spaces), within
// 32 bits.
func parseID(b []byte) (uint32, bool) {
	if !isDecimal(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b), 10, 32)
	return uint32(n), err == nil
}

func isDecimal(b []byte) bool {
	if len(b) == 0 || len(b) > 10 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func validUserName(b []byte) bool {
	if len(b) == 0 || len(b) > maxUserName || b[0] == '+' || b[0] == '-' || !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// readPasswd reads <root>/etc/passwd without leaving root: os.OpenInRoot
// refuses a symbolic link that points outside it. An absolute link such
// as /etc/passwd -> /usr/share/... would otherwise be resolved in the
// exporter's own filesystem and give the container's names for the host's
// uids, which is worse than numbers.
func readPasswd(root string) (map[uint32]string, error) {
	f, err := os.OpenInRoot(root, "etc/passwd")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswdSize+1))
	if err != nil {
		return nil, err
	}
	var errTrunc error
	if len(b) > maxPasswdSize {
		// Keep the whole lines only: a cut line could be a shorter,
		// wrong name for its uid.
		b = b[:bytes.LastIndexByte(b[:maxPasswdSize], '\n')+1]
		errTrunc = fmt.Errorf("%s/etc/passwd is larger than %d bytes; users past that show as uids", root, maxPasswdSize)
	}
	return parsePasswd(b), errTrunc
}

// errNoUser is a uid the passwd file does not name.
var errNoUser = errors.New("no such user")

// passwdFile answers userCache's lookups from <root>/etc/passwd, read once
// per cache lifetime (userCacheTTL) at the first miss, not once per uid.
type passwdFile struct {
	root   string
	names  map[uint32]string
	loaded bool
	// onErr reports a file that cannot be read; its uids then show as
	// numbers until the next refresh tries again.
	onErr func(error)
}

func (p *passwdFile) lookup(uid string) (string, error) {
	if !p.loaded {
		p.loaded = true
		names, err := readPasswd(p.root)
		if err != nil && p.onErr != nil {
			p.onErr(err)
		}
		p.names = names
	}
	id, ok := parseID([]byte(uid))
	if !ok {
		return "", errNoUser
	}
	if n, ok := p.names[id]; ok {
		return n, nil
	}
	return "", errNoUser
}

// reset makes the next lookup read the file again.
func (p *passwdFile) reset() {
	p.names, p.loaded = nil, false
}
