package main

// This file is the broker process's side: the embedded broker with the
// backlog in its memory, apart from the measured consumers.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/internal/kafkatest"
)

// addrPrefix starts the broker's line that gives its address, printed
// once the backlog is produced.
const addrPrefix = "addr "

// brokerMain starts the broker, produces the backlog, prints its address
// and serves until its stdin closes or it gets SIGTERM. It returns the
// process's exit code.
func brokerMain(topic string, partitions, perPartition, size int) int {
	if partitions < 1 || perPartition < 1 || size < 1 {
		fmt.Fprintf(os.Stderr, "memory broker: bad backlog %d x %d x %d\n", partitions, perPartition, size)
		return 2
	}
	c, err := kafkatest.New(kafkatest.WithTopic(topic, int32(partitions)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "memory broker:", err)
		return 1
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := produce(ctx, c.Addrs(), topic, partitions, perPartition, size); err != nil {
		fmt.Fprintln(os.Stderr, "memory broker:", err)
		return 1
	}
	fmt.Println(addrPrefix + c.Addrs()[0])
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	select {
	case <-done:
	case <-sig:
	}
	return 0
}

// produce writes partitions x perPartition records to topic, uncompressed
// (so that a fetch response's bytes are the messages' bytes), each with a
// value of size bytes and its index as key, message i to partition i
// modulo partitions.
func produce(ctx context.Context, addrs []string, topic string, partitions, perPartition, size int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.DefaultProduceTopic(topic))
	if err != nil {
		return err
	}
	defer cl.Close()
	value := make([]byte, size)
	for i := range value {
		value[i] = byte('a' + i%26)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i := range partitions * perPartition {
		wg.Add(1)
		r := &kgo.Record{Partition: int32(i % partitions), Key: strconv.AppendInt(nil, int64(i), 10), Value: value}
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	return first
}
