package api

import (
	"net/netip"
	"strings"
)

// The Forwarded header (RFC 7239), read beside X-Forwarded-For for a
// request from a trusted proxy (clientkey.go), with the same rule: the
// client is the right-most "for=" node that is not a trusted proxy.
//
//	Forwarded: for=192.0.2.60;proto=https;by=203.0.113.43, for="[2001:db8::1]:443"
//
// Elements are separated by commas, parameters by semicolons, values are
// tokens or quoted strings (a comma or semicolon inside quotes is text),
// parameter names and "unknown" are case-insensitive, and several header
// lines are one list in order. A node that names no address ("unknown",
// an obfuscated "_hidden"), an element without for=, or one that does not
// parse ends the walk as junk in X-Forwarded-For does: the client is the
// last trusted hop, never something further left. So text a client writes
// can at worst make it share its proxy's budget, never pick an address.
//
// The parser goes left to right once (quotes can only be read that way)
// and keeps the last maxForwardedHops+1 nodes in a fixed array: time is
// linear in the header's length (itself bounded by MaxHeaderBytes) and
// memory does not grow with it.

// fwdNode is one element's for= node: an address, or none (ok false:
// unknown, obfuscated, missing or malformed).
type fwdNode struct {
	addr netip.Addr
	ok   bool
}

// fwdRing holds the right-most nodes of a Forwarded list: the walk looks
// at maxForwardedHops of them at most, and one more tells it the chain
// was longer.
type fwdRing struct {
	nodes [maxForwardedHops + 1]fwdNode
	n     int // nodes seen in all; the last min(n, len(nodes)) are kept
}

func (r *fwdRing) push(n fwdNode) {
	r.nodes[r.n%len(r.nodes)] = n
	r.n++
}

// walk hands the kept nodes to step from right to left until it says stop.
func (r *fwdRing) walk(step func(fwdNode) bool) {
	kept := min(r.n, len(r.nodes))
	for i := 1; i <= kept; i++ {
		if step(r.nodes[(r.n-i)%len(r.nodes)]) {
			return
		}
	}
}

// parseForwarded adds the elements of one Forwarded header line to r.
func (r *fwdRing) parseForwarded(s string) {
	i := 0
	for i <= len(s) {
		node, pairs, next := parseForwardedElement(s, i)
		if pairs > 0 {
			r.push(node)
		}
		i = next + 1 // past the comma (or the end)
	}
}

// parseForwardedElement reads the element starting at s[i:] up to the
// next comma outside quotes; next is that comma's index (len(s) at the
// end). pairs counts the parameters read (0: an empty list element, which
// the list syntax allows and which is skipped); a malformed element counts
// one, with no node.
func parseForwardedElement(s string, i int) (node fwdNode, pairs int, next int) {
	var forVal string
	haveFor, bad := false, false
	for {
		i = skipOWS(s, i)
		if i >= len(s) || s[i] == ',' {
			break
		}
		if s[i] == ';' {
			i++
			continue
		}
		pairs++
		start := i
		for i < len(s) && isTchar(s[i]) {
			i++
		}
		name := s[start:i]
		if name == "" || i >= len(s) || s[i] != '=' {
			bad = true
			break
		}
		i++
		var val string
		var ok bool
		if val, i, ok = forwardedValue(s, i); !ok {
			bad = true
			break
		}
		if strings.EqualFold(name, "for") {
			if haveFor { // "MUST NOT occur more than once per element"
				bad = true
				break
			}
			haveFor, forVal = true, val
		}
		i = skipOWS(s, i)
		if i < len(s) && s[i] != ';' && s[i] != ',' {
			bad = true
			break
		}
	}
	if bad {
		return fwdNode{}, 1, skipToComma(s, i)
	}
	if haveFor {
		node = parseNode(forVal)
	}
	return node, pairs, i
}

// forwardedValue reads a token or a quoted string at s[i:], unescaping
// the latter. Tokens also take ':', '[' and ']' (which RFC 7239 wants
// quoted) because some proxies send for=192.0.2.1:80 bare; that cannot
// join two elements, as no delimiter is taken.
func forwardedValue(s string, i int) (val string, next int, ok bool) {
	if i < len(s) && s[i] == '"' {
		i++
		start, escaped := i, false
		for i < len(s) {
			switch c := s[i]; {
			case c == '"':
				val = s[start:i]
				if escaped {
					val = unescapeQuoted(val)
				}
				return val, i + 1, true
			case c == '\\':
				escaped = true
				i += 2
			case c < 0x20 && c != '\t', c == 0x7f:
				return "", i, false
			default:
				i++
			}
		}
		return "", len(s), false // unterminated: the rest of the line is junk
	}
	start := i
	for i < len(s) && (isTchar(s[i]) || s[i] == ':' || s[i] == '[' || s[i] == ']') {
		i++
	}
	return s[start:i], i, i > start
}

func unescapeQuoted(q string) string {
	var b strings.Builder
	b.Grow(len(q))
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) {
			i++
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// skipToComma returns the index of the next comma outside quotes at or
// after i, or len(s).
func skipToComma(s string, i int) int {
	quoted := false
	for ; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == ',':
			return i
		}
	}
	return len(s)
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// isTchar: RFC 9110's token characters.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseNode reads a node (RFC 7239 section 6): an IPv4 address or a
// bracketed IPv6 one, each with an optional port (digits or obfuscated);
// "unknown" and obfuscated names give no address. A bare IPv6 address
// without a port is taken too (a lenient proxy's).
func parseNode(v string) fwdNode {
	if v == "" || v[0] == '_' || strings.EqualFold(v, "unknown") {
		return fwdNode{}
	}
	host, port := v, ""
	if v[0] == '[' {
		j := strings.IndexByte(v, ']')
		if j < 0 {
			return fwdNode{}
		}
		host, port = v[1:j], v[j+1:]
		if port != "" && port[0] != ':' {
			return fwdNode{}
		}
	} else if strings.Count(v, ":") == 1 {
		j := strings.IndexByte(v, ':')
		host, port = v[:j], v[j:]
	}
	if port != "" && !validPort(port[1:]) {
		return fwdNode{}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || (v[0] == '[' && !a.Is6()) {
		return fwdNode{}
	}
	return fwdNode{addr: a.Unmap().WithZone(""), ok: true}
}

// validPort: 1*5DIGIT, or an obfuscated port "_" 1*(ALPHA / DIGIT / "." / "_" / "-").
func validPort(p string) bool {
	if p == "" {
		return false
	}
	if p[0] == '_' {
		if len(p) == 1 {
			return false
		}
		for i := 1; i < len(p); i++ {
			if c := p[i]; !isTchar(c) || strings.IndexByte("!#$%&'*+^`|~", c) >= 0 {
				return false
			}
		}
		return true
	}
	if len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}
