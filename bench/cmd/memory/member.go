package main

// This file is the member process's side: one consumer (an adapter of this
// module or a plain client loop) run on the backlog until it is handled,
// or the time or message cap is reached, and its figures printed as one
// JSON line on stdout.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	segkafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/adapters/kafkago"
)

// spec is what a member process is told on its command line.
type spec struct {
	Row         string
	Brokers     string
	Topic       string
	Group       string
	Concurrency int
	Handler     time.Duration // each handler call sleeps this long
	Duration    time.Duration // stop this long after the first message
	Stop        int64         // stop after this many messages handled
	MaxBuffered int64         // WithMaxBufferedBytes, adapters only; 0: the default
}

func (s spec) args() []string {
	return []string{
		"-member=" + s.Row,
		"-m.brokers=" + s.Brokers,
		"-m.topic=" + s.Topic,
		"-m.group=" + s.Group,
		fmt.Sprintf("-m.concurrency=%d", s.Concurrency),
		"-m.handler=" + s.Handler.String(),
		"-m.duration=" + s.Duration.String(),
		fmt.Sprintf("-m.stop=%d", s.Stop),
		fmt.Sprintf("-m.maxbuffered=%d", s.MaxBuffered),
	}
}

// result is what a member process reports at its end.
type result struct {
	Handled  int64         // handler calls
	Wall     time.Duration // from the first handler call's start to the stop
	Busy     time.Duration // the handler calls' time, summed
	GoHeap   uint64        // peak of the Go heap's objects (runtime/metrics), sampled
	GoMapped uint64        // peak of what the Go runtime has mapped and not released
	// Pending is the peak of the messages fetched and not yet handled, as
	// the adapter's Stats count them (sampled; 0 for the plain loops).
	Pending int64
	Err     string `json:",omitempty"`
}

// BusyFraction is Busy over Concurrency x Wall.
func (r result) BusyFraction(concurrency int) float64 {
	if r.Wall <= 0 || concurrency <= 0 {
		return 0
	}
	return float64(r.Busy) / (float64(concurrency) * float64(r.Wall))
}

// resultPrefix starts the member's result line; firstLine is printed when
// the first handler call starts.
const (
	resultPrefix = "result "
	firstLine    = "first"
)

// consumeFunc runs one consumer until ctx ends, calling handle for every
// message from s.Concurrency goroutines.
type consumeFunc func(ctx context.Context, s spec, handle func()) error

var consumers = map[string]consumeFunc{
	"kafkago":         consumeKafkago,
	"confluent":       consumeConfluent,
	"franz":           consumeFranz,
	"plain-kafkago":   plainKafkago,
	"plain-confluent": plainConfluent,
	"plain-franz":     plainFranz,
}

// memberMain runs the member s and returns the process's exit code. It
// exits at once when its stdin closes (the parent is gone) and, after its
// result, waits for that (so that the parent reads its VmHWM) for at most
// a minute.
func memberMain(s spec) int {
	consume := consumers[s.Row]
	if consume == nil {
		fmt.Fprintf(os.Stderr, "memory: unknown member row %q\n", s.Row)
		return 2
	}
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stopAt atomic.Int64 // unix ns of the stop
	stop := func() {
		stopAt.CompareAndSwap(0, time.Now().UnixNano())
		cancel()
	}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		select {
		case <-sig:
			stop()
		case <-stdinClosed:
			os.Exit(3) // the parent is gone: nobody reads our figures
		}
	}()

	var (
		handled, busy atomic.Int64
		first         atomic.Int64 // unix ns of the first call's start
		lastEnd       atomic.Int64 // unix ns of the latest call's end
		firstOnce     sync.Once
	)
	out := bufio.NewWriter(os.Stdout)
	var outMu sync.Mutex
	say := func(line string) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintln(out, line)
		out.Flush()
	}
	handle := func() {
		start := time.Now()
		firstOnce.Do(func() {
			first.Store(start.UnixNano())
			say(firstLine)
			time.AfterFunc(s.Duration, stop)
		})
		time.Sleep(s.Handler)
		end := time.Now()
		busy.Add(int64(end.Sub(start)))
		for {
			l := lastEnd.Load()
			if l >= end.UnixNano() || lastEnd.CompareAndSwap(l, end.UnixNano()) {
				break
			}
		}
		if n := handled.Add(1); s.Stop > 0 && n >= s.Stop {
			stop()
		}
	}

	peak := startGoSampler(ctx)
	err := consume(ctx, s, handle)
	var r result
	r.Handled = handled.Load()
	r.Busy = time.Duration(busy.Load())
	if f := first.Load(); f != 0 {
		// The wall ends at the stop, or with the last call if it ran past
		// it (every call's time is in Busy).
		r.Wall = time.Duration(max(stopAt.Load(), lastEnd.Load()) - f)
	}
	r.GoHeap, r.GoMapped = peak()
	r.Pending = peakPending.Load()
	if err != nil {
		r.Err = err.Error()
	}
	b, _ := json.Marshal(r)
	say(resultPrefix + string(b))
	select {
	case <-stdinClosed:
	case <-time.After(time.Minute):
	}
	if err != nil {
		return 1
	}
	return 0
}

// startGoSampler samples the Go runtime's memory every 20 ms until ctx
// ends; the function it returns gives the peaks (heap objects, and mapped
// minus released).
func startGoSampler(ctx context.Context) func() (heap, mapped uint64) {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	var mu sync.Mutex
	var heap, mapped uint64
	read := func() {
		metrics.Read(samples)
		mu.Lock()
		heap = max(heap, samples[0].Value.Uint64())
		mapped = max(mapped, samples[1].Value.Uint64()-samples[2].Value.Uint64())
		mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			read()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		<-done
		read()
		mu.Lock()
		defer mu.Unlock()
		return heap, mapped
	}
}

// peakPending is the peak of the adapter's pending messages (samplePending).
var peakPending atomic.Int64

// samplePending records the peak of pending() every 20 ms until ctx ends.
func samplePending(ctx context.Context, pending func() int64) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if n := pending(); n > peakPending.Load() {
			peakPending.Store(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pendingOf sums the partitions' pending messages.
func pendingOf[S kafkago.PartitionStats | confluent.PartitionStats | franz.PartitionStats](ps []S) int64 {
	var n int64
	for _, p := range ps {
		n += kafkago.PartitionStats(p).Pending
	}
	return n
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// The adapters: default options but the concurrency (and MaxBufferedBytes
// when given), Run with the handler.

func consumeKafkago(ctx context.Context, s spec, handle func()) error {
	opts := []kafkago.Option{kafkago.WithConcurrency(s.Concurrency), kafkago.WithLogger(discard())}
	if s.MaxBuffered > 0 {
		opts = append(opts, kafkago.WithMaxBufferedBytes(s.MaxBuffered))
	}
	c, err := kafkago.NewConsumer([]string{s.Brokers}, s.Group, []string{s.Topic}, opts...)
	if err != nil {
		return err
	}
	go samplePending(ctx, func() int64 { return pendingOf(c.Stats()) })
	return c.Run(ctx, func(context.Context, segkafka.Message) error { handle(); return nil })
}

func consumeConfluent(ctx context.Context, s spec, handle func()) error {
	opts := []confluent.Option{confluent.WithConcurrency(s.Concurrency), confluent.WithLogger(discard())}
	if s.MaxBuffered > 0 {
		opts = append(opts, confluent.WithMaxBufferedBytes(s.MaxBuffered))
	}
	c, err := confluent.NewConsumer([]string{s.Brokers}, s.Group, []string{s.Topic}, opts...)
	if err != nil {
		return err
	}
	go samplePending(ctx, func() int64 { return pendingOf(c.Stats()) })
	return c.Run(ctx, func(context.Context, *ckafka.Message) error { handle(); return nil })
}

func consumeFranz(ctx context.Context, s spec, handle func()) error {
	opts := []franz.Option{franz.WithConcurrency(s.Concurrency), franz.WithLogger(discard())}
	if s.MaxBuffered > 0 {
		opts = append(opts, franz.WithMaxBufferedBytes(s.MaxBuffered))
	}
	c, err := franz.NewConsumer([]string{s.Brokers}, s.Group, []string{s.Topic}, opts...)
	if err != nil {
		return err
	}
	go samplePending(ctx, func() int64 { return pendingOf(c.Stats()) })
	return c.Run(ctx, func(context.Context, *kgo.Record) error { handle(); return nil })
}

// workers runs n goroutines that call handle for each message of ch (and
// then done, if not nil) until ch is closed; wait waits for them.
func workers[M any](n int, ch <-chan M, handle func(), done func(M)) (wait func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for m := range ch {
				handle()
				if done != nil {
					done(m)
				}
			}
		})
	}
	return wg.Wait
}

// plainKafkago is kafka-go's usual loop: a Reader with a GroupID (its
// defaults: 100-message queue, synchronous commits) feeding workers through
// a channel; each worker commits the message it handled.
func plainKafkago(ctx context.Context, s spec, handle func()) error {
	r := segkafka.NewReader(segkafka.ReaderConfig{Brokers: []string{s.Brokers}, GroupID: s.Group, Topic: s.Topic})
	ch := make(chan segkafka.Message)
	wait := workers(s.Concurrency, ch, handle, func(m segkafka.Message) {
		_ = r.CommitMessages(context.Background(), m) // errors ignored, as such loops do
	})
	var err error
	for {
		m, ferr := r.FetchMessage(ctx)
		if ferr != nil {
			if ctx.Err() == nil {
				err = ferr
			}
			break
		}
		ch <- m
	}
	close(ch)
	wait()
	return errors.Join(err, r.Close())
}

// plainConfluent is librdkafka's usual loop: Poll feeding workers through
// a channel, librdkafka's defaults (auto commit of what was polled).
func plainConfluent(ctx context.Context, s spec, handle func()) error {
	c, err := ckafka.NewConsumer(&ckafka.ConfigMap{
		"bootstrap.servers": s.Brokers,
		"group.id":          s.Group,
		"auto.offset.reset": "earliest",
		"log_level":         3,
	})
	if err != nil {
		return err
	}
	if err := c.SubscribeTopics([]string{s.Topic}, nil); err != nil {
		return errors.Join(err, c.Close())
	}
	ch := make(chan *ckafka.Message)
	wait := workers(s.Concurrency, ch, handle, nil)
	for ctx.Err() == nil {
		if m, ok := c.Poll(100).(*ckafka.Message); ok {
			select {
			case ch <- m:
			case <-ctx.Done():
			}
		}
	}
	close(ch)
	wait()
	return c.Close()
}

// plainFranz is kgo's usual loop: PollFetches feeding workers through a
// channel, kgo's defaults (auto commit of what was polled).
func plainFranz(ctx context.Context, s spec, handle func()) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers), kgo.ConsumerGroup(s.Group), kgo.ConsumeTopics(s.Topic))
	if err != nil {
		return err
	}
	ch := make(chan *kgo.Record)
	wait := workers(s.Concurrency, ch, handle, nil)
loop:
	for {
		fs := cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			break
		}
		for it := fs.RecordIter(); !it.Done(); {
			select {
			case ch <- it.Next():
			case <-ctx.Done():
				break loop
			}
		}
	}
	close(ch)
	wait()
	cl.Close()
	return nil
}
