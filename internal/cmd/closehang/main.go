// Command closehang reproduces a hang in librdkafka 2.11.1 (the one
// confluent-kafka-go v2.11.1 bundles) with no code of this module: a
// cooperative-sticky consumer whose Close serves two revokes can wait for
// ever in the second one's IncrementalUnassign.
//
// Each iteration: member A owns all 6 partitions of a topic on the
// embedded broker; member B joins while A does not poll, so A's revoke of
// B's share is queued; A calls Close. Close unsubscribes, and librdkafka
// queues a revoke of the rest behind the first (its cooperative
// revoke-all does not check for a revoke the application has not served).
// A's rebalance callback serves the first: librdkafka treats that unassign
// as a full one, A leaves, and the group terminates when the LeaveGroup
// answer is served. The callback works a little (up to -sleep) before the
// second IncrementalUnassign; when that request reaches librdkafka's main
// queue after the LeaveGroup answer and before the main thread served it,
// rd_kafka_cgrp_op_serve finds rkcg_terminated set and destroys the
// request without answering: the call, and Close, never return
// (librdkafka #4884). The window is short: busy goroutines (-hogs), each
// on a thread of its own, load the machine. On the 2-core machine of
// 2026-12-06 it hung at iteration 94 (1.5 minutes), and at 255 (4
// minutes) in a build whose hogs never yielded; with busy shell loops
// instead of -hogs, at 343; with -hogs yielding often, not in 600. The
// confluent adapter avoids it by unsubscribing before Close
// (adapters/confluent/loop.go, leave).
//
//	go run ./internal/cmd/closehang -n 400
//
// Exit status 1 when an iteration hung (Close not returned in 10 s), 0
// when none did.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	n := flag.Int("n", 400, "iterations")
	sleep := flag.Duration("sleep", time.Millisecond, "most work before the second unassign (uniform)")
	hogs := flag.Int("hogs", runtime.NumCPU()+1, "busy goroutines loading the machine")
	flag.Parse()
	fake, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "t"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer fake.Close()
	// Each hog on a thread of its own, as busy processes would be.
	runtime.GOMAXPROCS(*hogs + runtime.NumCPU())
	for range *hogs {
		go func() {
			for n := 0; ; n++ {
				if n%(1<<24) == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	start := time.Now()
	for i := range *n {
		if hung(fake.ListenAddrs()[0], fmt.Sprint("g", i), *sleep) {
			fmt.Printf("iteration %d: Close did not return in 10s (after %v): the hang\n", i+1, time.Since(start).Round(time.Second))
			os.Exit(1)
		}
	}
	fmt.Printf("no hang in %d iterations (%v)\n", *n, time.Since(start).Round(time.Second))
}

// hung runs one iteration in group and reports whether A's Close hung.
func hung(addr, group string, sleep time.Duration) bool {
	var closing atomic.Bool
	member := func() (*kafka.Consumer, *atomic.Int32) {
		kc, err := kafka.NewConsumer(&kafka.ConfigMap{
			"bootstrap.servers": addr, "group.id": group, "partition.assignment.strategy": "cooperative-sticky",
			"session.timeout.ms": 6000, "heartbeat.interval.ms": 100, "log_level": 0,
		})
		if err != nil {
			panic(err)
		}
		var owned atomic.Int32
		cb := func(c *kafka.Consumer, ev kafka.Event) error {
			switch e := ev.(type) {
			case kafka.AssignedPartitions:
				_ = c.IncrementalAssign(e.Partitions)
				owned.Add(int32(len(e.Partitions)))
			case kafka.RevokedPartitions:
				if closing.Load() {
					time.Sleep(time.Duration(rand.Int64N(int64(sleep)))) // work before the unassign: a commit, say
				}
				_ = c.IncrementalUnassign(e.Partitions)
				owned.Add(-int32(len(e.Partitions)))
			}
			return nil
		}
		if err := kc.SubscribeTopics([]string{"t"}, cb); err != nil {
			panic(err)
		}
		return kc, &owned
	}
	a, aOwned := member()
	for aOwned.Load() < 6 {
		a.Poll(50)
	}
	b, _ := member()
	stop, bDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(bDone)
		for {
			select {
			case <-stop:
				return
			default:
				b.Poll(50)
			}
		}
	}()
	time.Sleep(800 * time.Millisecond) // A does not poll: its revoke of B's share is queued
	closing.Store(true)
	closed := make(chan struct{})
	go func() { _ = a.Close(); close(closed) }()
	defer func() {
		close(stop)
		<-bDone
		_ = b.Close()
	}()
	select {
	case <-closed:
		return false
	case <-time.After(10 * time.Second):
		return true
	}
}
