// Command soak runs one adapter for a long while (default 10 minutes)
// against the embedded broker (3 brokers, started in this process) under a
// steady produce rate, member churn and broker faults, and checks that the
// consumer does not grow: every 10 s it prints the observed member's RSS,
// goroutines and open connections and the group's lag.
//
// The group has 3 member processes (this binary re-executed with a hidden
// -member flag). Member 0 is the observed one: it is never killed or
// frozen. The others are SIGKILLed or SIGTERMed and replaced every
// 20–40 s, and the broker misbehaves every 1–2.5 s (package brokerfault:
// leader moves, coordinator moves, a broker out and back, requests cut or
// failed with real error codes, a churned member frozen past its session
// timeout). The churn and the faults stop -quiet before the end.
//
// The run fails (exit 1) if: the observed member's RSS or goroutines at the
// end exceed their value after the first minute (-baseline) by more than
// 10%; its open connections exceed theirs by more than 2; the lag is not
// back to 0 within 30 s after the last fault; a message below the final
// commit was never handled; a member failed.
//
// The embedded broker can hold the group in PreparingRebalance for a minute
// or more (its stuck-group bug, see package churn), while the produce rate
// goes on: the backlog it builds grows the member's heap and queues, and
// much of that memory is kept after the catch-up. The soak reads the
// group's state every 100 ms and reports every stuck episode (a classic
// group PreparingRebalance at one generation for churn's StuckAfter, 19 s):
// its start, length, the lag it built and when it was caught up, and the
// table's last column shows the group's state. With stuck episodes, RSS is
// also judged without them: the growth from the baseline with the steps
// between samples that meet an episode (from its start to its catch-up)
// left out. If that growth is over 10% the run fails. If only the whole
// growth is, the verdict is "broker bug" (exit 3), and the same when the
// growth cannot be judged (the last backlog never caught up, or less than
// 2 minutes after it) or the lag was not consumed while the group was
// stuck. A member resumed from a freeze is not killed until it has rejoined
// (churn.ThawGuard): killed during that rejoin, it can be a ghost, which
// leads to the stuck group.
//
//	go run ./bench/cmd/soak                       # 10 minutes, franz-cooperative
//	go run ./bench/cmd/soak -adapter confluent-cooperative
//	go run ./bench/cmd/soak -short                # a 2-minute smoke test
//	go run ./bench/cmd/soak -heapprofile          # and heap profiles of member 0, every minute
//
// Linux only for the figures: RSS and connections are read from /proc.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"time"

	"github.com/inorder/inorder/internal/kafkatest/churn"
	"github.com/inorder/inorder/internal/kafkatest/churn/cfmember"
	"github.com/inorder/inorder/internal/kafkatest/churn/frmember"
	"github.com/inorder/inorder/internal/kafkatest/churn/kgmember"
)

// kind is a member kind: an adapter and its rebalance protocol.
type kind struct {
	name     string
	consume  churn.Consume
	protocol string
}

var kinds = []kind{
	{"kafkago", kgmember.Consume, "eager"},
	{"confluent-eager", cfmember.Consume, "eager"},
	{"confluent-cooperative", cfmember.Consume, "cooperative"},
	{"franz-eager", frmember.Consume, "eager"},
	{"franz-cooperative", frmember.Consume, "cooperative"},
}

func main() {
	member := flag.String("member", "", "internal: run as a member process of this kind")
	o := opts{}
	flag.StringVar(&o.adapter, "adapter", "franz-cooperative", "the adapter and protocol: kafkago, confluent-eager, confluent-cooperative, franz-eager, franz-cooperative")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "length of the soak")
	short := flag.Bool("short", false, "a smoke test: -duration 2m -quiet 45s -baseline 1m")
	flag.DurationVar(&o.quiet, "quiet", time.Minute, "the last part of the soak, without churn or faults")
	flag.DurationVar(&o.baseline, "baseline", time.Minute, "the sample the end is compared with, this long after the start")
	flag.IntVar(&o.rate, "rate", 200, "messages produced per second")
	flag.IntVar(&o.keys, "keys", 0, "messages with this many keys, handled ByKey (0: keyless, Unordered)")
	flag.BoolVar(&o.keep, "keep", false, "keep the run's directory (a failed run's is always kept)")
	flag.BoolVar(&o.verbose, "v", false, "print every event")
	flag.BoolVar(&o.heapProfile, "heapprofile", false, "the observed member writes its heap profile every minute to the run's directory (heap-0-<minute>m.pprof; implies -keep)")
	flag.Parse()
	if *member != "" || churn.IsMember() {
		i := slices.IndexFunc(kinds, func(k kind) bool { return k.name == *member })
		if i < 0 {
			fmt.Fprintf(os.Stderr, "soak: unknown member kind %q\n", *member)
			os.Exit(2)
		}
		os.Exit(churn.MemberMain(withStats(kinds[i].consume)))
	}
	o.keep = o.keep || o.heapProfile
	if *short {
		o.duration, o.quiet, o.baseline = 2*time.Minute, 45*time.Second, time.Minute
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	v, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	switch v {
	case verdictFail:
		os.Exit(1)
	case verdictBrokerBug:
		os.Exit(3)
	}
}

// heapProfileEnv, set in a member's environment, makes it write heap
// profiles (writeStats) to this path with the minute appended.
const heapProfileEnv = "SOAK_HEAP_PROFILE"

// statsPath is where member index of a run whose handled file is out
// writes its goroutine count.
func statsPath(out string, index int) string {
	return filepath.Join(filepath.Dir(out), fmt.Sprintf("stats-%d.txt", index))
}

// withStats wraps a Consume so that the member writes its goroutine count
// to its stats file every second (the parent reads RSS and connections from
// /proc, goroutines only the process itself knows).
func withStats(consume churn.Consume) churn.Consume {
	return func(ctx context.Context, s churn.MemberSpec, handle churn.Handle, log *slog.Logger) error {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			writeStats(statsPath(s.Out, s.Index), os.Getenv(heapProfileEnv), stop)
		}()
		defer func() {
			close(stop)
			<-done
		}()
		return consume(ctx, s, handle, log)
	}
}
