package sandbox

import (
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// mix hashes its inputs with splitmix64 steps; every generated value is derived from it so that
// a record depends only on the seed and its coordinates.
func mix(vals ...uint64) uint64 {
	h := uint64(0x9e3779b97f4a7c15)
	for _, v := range vals {
		h ^= v + 0x9e3779b97f4a7c15 + (h << 6) + (h >> 2)
		h = splitmix(h)
	}
	return h
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func hashString(s string) uint64 {
	h := uint64(1469598103934665603)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// rnd is a tiny deterministic stream for filling one record.
type rnd struct{ h uint64 }

func newRnd(vals ...uint64) *rnd { return &rnd{h: mix(vals...)} }

func (r *rnd) next() uint64 { r.h = splitmix(r.h); return r.h }

func (r *rnd) intn(n int) int {
	if n <= 0 {
		return 0
	}
	return int(r.next() % uint64(n))
}

func (r *rnd) chance(p float64) bool { return float64(r.next()>>11)/float64(1<<53) < p }

func (r *rnd) float() float64 { return float64(r.next()>>11) / float64(1<<53) }

func pick[T any](r *rnd, list []T) T { return list[r.intn(len(list))] }

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ulid renders a 26-character ULID from a millisecond time and 80 bits of payload, so IDs sort by
// creation time as Klaviyo's profile IDs do.
func ulid(ms int64, hi uint64, lo uint64) string {
	var b [26]byte
	t := uint64(ms)
	for i := 9; i >= 0; i-- {
		b[i] = crockford[t&31]
		t >>= 5
	}
	// 80 bits: 40 from hi, 40 from lo.
	v := hi & (1<<40 - 1)
	for i := 17; i >= 10; i-- {
		b[i] = crockford[v&31]
		v >>= 5
	}
	v = lo & (1<<40 - 1)
	for i := 25; i >= 18; i-- {
		b[i] = crockford[v&31]
		v >>= 5
	}
	return string(b[:])
}

// ulidPayload returns the low 40 bits of a ULID's payload, or false if s is not a ULID.
func ulidPayload(s string) (uint64, bool) {
	if len(s) != 26 {
		return 0, false
	}
	var v uint64
	for i := 18; i < 26; i++ {
		c := s[i]
		j := -1
		for k := 0; k < 32; k++ {
			if crockford[k] == c {
				j = k
				break
			}
		}
		if j < 0 {
			return 0, false
		}
		v = v<<5 | uint64(j)
	}
	return v, true
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// shortID is Klaviyo's 6-character ID shape (lists, metrics, flows...), unique per kind and index.
func shortID(salt uint64, i int64) string { return encID(salt, i, 6) }

// encID renders index i as a width-character (at most 10) base62 ID through a bijection of 62^width, so IDs
// look random yet decode back to the index without a lookup table.
func encID(salt uint64, i int64, width int) string {
	space := pow62(width)
	v := (mulMod(uint64(i), 2654435761, space) + salt%space) % space
	b := make([]byte, width)
	for k := width - 1; k >= 0; k-- {
		b[k] = alnum[v%62]
		v /= 62
	}
	return string(b)
}

func pow62(width int) uint64 {
	s := uint64(1)
	for k := 0; k < width; k++ {
		s *= 62
	}
	return s
}

// shortIndex inverts shortID.
func shortIndex(salt uint64, id string) (int64, bool) { return decID(salt, id, 6) }

// decID inverts encID.
func decID(salt uint64, id string, width int) (int64, bool) {
	if len(id) != width {
		return 0, false
	}
	space := pow62(width)
	var v uint64
	for k := 0; k < width; k++ {
		j := strings.IndexByte(alnum, id[k])
		if j < 0 {
			return 0, false
		}
		v = v*62 + uint64(j)
	}
	d := (v + space - salt%space) % space
	return int64(mulMod(d, modInverse(2654435761%space, space), space)), true
}

func mulMod(a, b, m uint64) uint64 {
	hi, lo := bits.Mul64(a%m, b%m)
	return bits.Rem64(hi, lo, m)
}

func modInverse(a, m uint64) uint64 {
	// extended Euclid on int64 (m < 2^36).
	var t, nt int64 = 0, 1
	r, nr := int64(m), int64(a)
	for nr != 0 {
		q := r / nr
		t, nt = nt, t-q*nt
		r, nr = nr, r-q*nr
	}
	if t < 0 {
		t += int64(m)
	}
	return uint64(t)
}

// hexID is a 32-hex-digit ID (reviews) derived from kind salt and index.
func hexID(salt uint64, i int64) string {
	const hexd = "0123456789abcdef"
	var b [32]byte
	a, c := mix(salt, uint64(i)), mix(salt, uint64(i), 1)
	for k := 0; k < 16; k++ {
		b[k] = hexd[(a>>(4*k))&15]
		b[16+k] = hexd[(c>>(4*k))&15]
	}
	return string(b[:])
}

// uuidID is the 8-4-4-4-12 shape used for tags and event uuids.
func uuidID(salt uint64, i int64) string {
	h := hexID(salt, i)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// isoTime renders Unix seconds the way Klaviyo does: second precision with a +00:00 offset.
func isoTime(sec int64) string {
	t := time.Unix(sec, 0).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < 0 || y > 9999 {
		return t.Format("2006-01-02T15:04:05+00:00")
	}
	var b [25]byte
	put := func(i, v, n int) {
		for k := n - 1; k >= 0; k-- {
			b[i+k] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, y, 4)
	b[4] = '-'
	put(5, int(mo), 2)
	b[7] = '-'
	put(8, d, 2)
	b[10] = 'T'
	put(11, h, 2)
	b[13] = ':'
	put(14, mi, 2)
	b[16] = ':'
	put(17, s, 2)
	copy(b[19:], "+00:00")
	return string(b[:])
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }
