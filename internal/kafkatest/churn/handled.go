package churn

// This file reads the members' shared handled file as it grows: which
// offsets were handled, how often, and by which member.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
)

// handled is the parent's view of the handled file. Not safe for concurrent
// use (the run loop owns it).
type handled struct {
	path     string
	pos      int64
	partial  []byte
	ends     map[int32]int64
	counts   map[int32][]uint32 // per partition, handlings per offset
	distinct map[int32]int64
	byMember map[int]int
	lines    int
}

func newHandled(path string, ends map[int32]int64) *handled {
	h := &handled{path: path, ends: ends, counts: map[int32][]uint32{},
		distinct: map[int32]int64{}, byMember: map[int]int{}}
	for p, e := range ends {
		h.counts[p] = make([]uint32, e)
	}
	return h
}

// read consumes what was appended since the last read. A line that does not
// parse or names an offset outside the log is an error.
func (h *handled) read() error {
	f, err := os.Open(h.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(h.pos, io.SeekStart); err != nil {
		return err
	}
	buf, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	h.pos += int64(len(buf))
	buf = append(h.partial, buf...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		if err := h.line(buf[:i]); err != nil {
			return err
		}
		buf = buf[i+1:]
	}
	h.partial = append(h.partial[:0:0], buf...)
	return nil
}

func (h *handled) line(l []byte) error {
	f := bytes.Fields(l)
	if len(f) != 3 {
		return fmt.Errorf("churn: bad handled line %q", l)
	}
	m, err1 := strconv.Atoi(string(f[0]))
	p, err2 := strconv.ParseInt(string(f[1]), 10, 32)
	o, err3 := strconv.ParseInt(string(f[2]), 10, 64)
	c, ok := h.counts[int32(p)]
	if err1 != nil || err2 != nil || err3 != nil || !ok || o < 0 || o >= int64(len(c)) {
		return fmt.Errorf("churn: bad handled line %q", l)
	}
	if c[o] == 0 {
		h.distinct[int32(p)]++
	}
	c[o]++
	h.byMember[m]++
	h.lines++
	return nil
}

// pending returns the number of offsets of partition p at or above commit
// never handled.
func (h *handled) pending(p int32, commit int64) int {
	n := 0
	for _, c := range h.counts[p][min(max(commit, 0), int64(len(h.counts[p]))):] {
		if c == 0 {
			n++
		}
	}
	return n
}

// lost returns the number of offsets below the final commit of their
// partition never handled, and per partition with losses a description
// with the first few.
func (h *handled) lost(final map[int32]int64) (int, []string) {
	total := 0
	var out []string
	for p := range int32(len(h.counts)) {
		var first []int64
		n, above := 0, 0
		for o, c := range h.counts[p] {
			switch {
			case c != 0:
			case int64(o) >= final[p]:
				above++
			default:
				n++
				if len(first) < 8 {
					first = append(first, int64(o))
				}
			}
		}
		if n > 0 {
			total += n
			out = append(out, fmt.Sprintf("partition %d: %d never handled below the final commit %d, first %v (and %d unhandled above it)",
				p, n, final[p], first, above))
		}
	}
	return total, out
}

// duplicates returns the handlings of an offset beyond its first.
func (h *handled) duplicates() int {
	var distinct int64
	for _, n := range h.distinct {
		distinct += n
	}
	return h.lines - int(distinct)
}

// progressed reports whether kill number done+1 may happen: always, unless
// cfg.KillAtProgress, when that many (Kills+1)ths of the messages must have
// been handled.
func (h *handled) progressed(cfg Config, done int) bool {
	if !cfg.KillAtProgress {
		return true
	}
	var distinct int64
	for _, n := range h.distinct {
		distinct += n
	}
	return distinct*int64(cfg.Kills+1) >= int64(done+1)*int64(cfg.Messages)
}
