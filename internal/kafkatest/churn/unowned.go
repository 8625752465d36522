package churn

// This file measures how long partitions sat without an owner during a run
// (revoked and not yet assigned again, or held by a dead member): the
// handler time a rebalance protocol costs. It reads the members' own log
// lines (the engine's "inorder: partitions assigned/revoked/lost" at Info,
// with their times) and the times the parent saw member processes exit.

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	logTime  = regexp.MustCompile(`^time=(\S+) `)
	logParts = regexp.MustCompile(`partitions="?` + topic + `\[([0-9 ]+)\]`)
)

// ownEvent is a member starting (own) or stopping to own partitions.
type ownEvent struct {
	at     time.Time
	member int
	parts  []int32 // nil with own false: every partition the member owns
	own    bool
}

// readOwnership returns the ownership events in member index's log file.
func readOwnership(path string, index int) ([]ownEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []ownEvent
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var own bool
		switch {
		case strings.Contains(line, `msg="inorder: partitions assigned"`):
			own = true
		case strings.Contains(line, `msg="inorder: partitions revoked"`),
			strings.Contains(line, `msg="inorder: partitions lost`):
		default:
			continue
		}
		tm, pm := logTime.FindStringSubmatch(line), logParts.FindStringSubmatch(line)
		if tm == nil || pm == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, tm[1])
		if err != nil {
			continue
		}
		var parts []int32
		for _, f := range strings.Fields(pm[1]) {
			if p, err := strconv.Atoi(f); err == nil {
				parts = append(parts, int32(p))
			}
		}
		out = append(out, ownEvent{at: at, member: index, parts: parts, own: own})
	}
	return out, sc.Err()
}

// unowned returns the partition-time without an owner between the first
// assignment and end, over partitions 0..n-1, from the members' log events
// and the exits (a member owns nothing once its process exited).
func unowned(events []ownEvent, exits map[int]time.Time, n int32, end time.Time) time.Duration {
	for m, at := range exits {
		events = append(events, ownEvent{at: at, member: m})
	}
	slices.SortStableFunc(events, func(a, b ownEvent) int { return a.at.Compare(b.at) })
	owners := make([]map[int]bool, n) // partition -> members owning it
	for p := range owners {
		owners[p] = map[int]bool{}
	}
	since := make([]time.Time, n) // when the partition last became unowned; zero: owned or never
	var first time.Time
	var total time.Duration
	for _, e := range events {
		if e.at.After(end) {
			break
		}
		parts := e.parts
		if !e.own && parts == nil {
			for p := range owners {
				if owners[p][e.member] {
					parts = append(parts, int32(p))
				}
			}
		}
		for _, p := range parts {
			if p < 0 || p >= n {
				continue
			}
			if e.own {
				if first.IsZero() {
					first = e.at
					for q := range since {
						since[q] = first // every partition waits for its first owner from here
					}
				}
				if len(owners[p]) == 0 && !since[p].IsZero() {
					total += e.at.Sub(since[p])
					since[p] = time.Time{}
				}
				owners[p][e.member] = true
				continue
			}
			if owners[p][e.member] {
				delete(owners[p], e.member)
				if len(owners[p]) == 0 {
					since[p] = e.at
				}
			}
		}
	}
	for p := range since {
		if !since[p].IsZero() && !first.IsZero() {
			total += end.Sub(since[p])
		}
	}
	return total
}
