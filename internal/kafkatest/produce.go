package kafkatest

// This file produces test records with franz-go's kgo: plain (idempotent,
// batched, asynchronous) or inside committed and aborted transactions.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProduceOption configures Produce and ProduceTxn.
type ProduceOption func(*produceConfig)

type produceConfig struct {
	valueSize int
	first     int
}

// ValueSize pads each record value with '.' to at least n bytes. Default:
// no padding (the value is the record's decimal index).
func ValueSize(n int) ProduceOption { return func(c *produceConfig) { c.valueSize = n } }

// FirstIndex numbers the records from i instead of 0 (the index is the
// value and decides the partition: index modulo the partition count).
func FirstIndex(i int) ProduceOption { return func(c *produceConfig) { c.first = i } }

func (pc *produceConfig) value(i int) []byte {
	v := strconv.AppendInt(make([]byte, 0, max(pc.valueSize, 20)), int64(i), 10)
	for len(v) < pc.valueSize {
		v = append(v, '.')
	}
	return v
}

// Produce writes n records to topic, record i to partition i modulo the
// partition count, with value strconv.Itoa(i) (see ValueSize, FirstIndex).
// It returns how many records went to each partition. It blocks until every
// record is acknowledged by the broker; on error some may have been written.
func (c *Cluster) Produce(ctx context.Context, topic string, n int, opts ...ProduceOption) (map[int32]int64, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: n %d < 0", ErrBadArgument, n)
	}
	var pc produceConfig
	for _, o := range opts {
		o(&pc)
	}
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	cl, err := c.kgoClient()
	if err != nil {
		return nil, err
	}
	counts := make(map[int32]int64, parts)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for i := pc.first; i < pc.first+n; i++ {
		p := int32(i % int(parts))
		counts[p]++
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: p, Value: pc.value(i)}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return counts, fmt.Errorf("kafkatest: produce to %q: %w", topic, firstErr)
	}
	return counts, nil
}

// Txn describes one transaction for ProduceTxn.
type Txn struct {
	Records int  // records in the transaction
	Abort   bool // abort instead of commit
}

// ProduceTxn writes the transactions in order with one transactional kgo
// producer (a fresh transactional id), records numbered on from FirstIndex
// across transactions and spread over partitions like Produce. Each
// transaction ends with a commit or abort marker in every partition it
// touched. It returns the committed (visible to read_committed) records per
// partition.
func (c *Cluster) ProduceTxn(ctx context.Context, topic string, txns []Txn, opts ...ProduceOption) (map[int32]int64, error) {
	pc, parts, cl, err := c.txnClient(ctx, topic, 30*time.Second, opts)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	committed := make(map[int32]int64, parts)
	i := pc.first
	for _, tx := range txns {
		if tx.Records < 0 {
			return committed, fmt.Errorf("%w: txn records %d < 0", ErrBadArgument, tx.Records)
		}
		if err := cl.BeginTransaction(); err != nil {
			return committed, fmt.Errorf("kafkatest: begin txn: %w", err)
		}
		recs := make([]*kgo.Record, 0, tx.Records)
		per := make(map[int32]int64)
		for range tx.Records {
			p := int32(i % int(parts))
			per[p]++
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: pc.value(i)})
			i++
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return committed, errors.Join(fmt.Errorf("kafkatest: txn produce: %w", err),
				cl.EndTransaction(ctx, kgo.TryAbort))
		}
		commit := kgo.TryCommit
		if tx.Abort {
			commit = kgo.TryAbort
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			return committed, fmt.Errorf("kafkatest: end txn: %w", err)
		}
		if !tx.Abort {
			for p, n := range per {
				committed[p] += n
			}
		}
	}
	return committed, nil
}

// OpenTxn writes n records to topic (numbered and spread like Produce) in a
// transaction that it leaves open, so that the partitions' last stable
// offset stays below their high watermark until end is called. end commits
// (commit true) or aborts the transaction and closes its producer; call it
// exactly once. On error nothing is left open.
func (c *Cluster) OpenTxn(ctx context.Context, topic string, n int, opts ...ProduceOption) (end func(ctx context.Context, commit bool) error, err error) {
	if n < 1 {
		return nil, fmt.Errorf("%w: n %d < 1", ErrBadArgument, n)
	}
	pc, parts, cl, err := c.txnClient(ctx, topic, 60*time.Second, opts)
	if err != nil {
		return nil, err
	}
	if err := cl.BeginTransaction(); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafkatest: begin txn: %w", err)
	}
	recs := make([]*kgo.Record, 0, n)
	for i := pc.first; i < pc.first+n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % int(parts)), Value: pc.value(i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		err = errors.Join(fmt.Errorf("kafkatest: txn produce: %w", err), cl.EndTransaction(ctx, kgo.TryAbort))
		cl.Close()
		return nil, err
	}
	return func(ctx context.Context, commit bool) error {
		defer cl.Close()
		how := kgo.TryAbort
		if commit {
			how = kgo.TryCommit
		}
		if err := cl.EndTransaction(ctx, how); err != nil {
			return fmt.Errorf("kafkatest: end txn: %w", err)
		}
		return nil
	}, nil
}

// txnClient applies opts and returns, with topic's partition count, a
// transactional producer with a fresh transactional id that writes to the
// partition each record names.
func (c *Cluster) txnClient(ctx context.Context, topic string, timeout time.Duration, opts []ProduceOption) (produceConfig, int32, *kgo.Client, error) {
	var pc produceConfig
	for _, o := range opts {
		o(&pc)
	}
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		return pc, 0, nil, err
	}
	cl, err := kgo.NewClient(append(c.clientOpts(),
		kgo.TransactionalID("kafkatest-"+rand.Text()),
		kgo.TransactionTimeout(timeout),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	)...)
	if err != nil {
		return pc, 0, nil, fmt.Errorf("kafkatest: transactional client: %w", err)
	}
	return pc, parts, cl, nil
}
