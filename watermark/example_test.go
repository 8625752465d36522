package watermark_test

import (
	"fmt"
	"sync"

	"github.com/inorder/inorder/watermark"
)

func ExamplePartition() {
	p := watermark.NewPartition(100)                // the committed offset: next to deliver
	for _, o := range []int64{100, 101, 102, 104} { // 103 is a gap (compacted)
		if err := p.Track(o); err != nil {
			panic(err)
		}
	}
	var wg sync.WaitGroup
	for _, o := range []int64{104, 102, 101} { // finish out of order
		wg.Go(func() { _ = p.Ack(o) })
	}
	wg.Wait()
	fmt.Println("commit point while 100 is in flight:", p.Committable())
	_ = p.Ack(100)
	fmt.Println("commit point after 100:", p.Committable())
	// Output:
	// commit point while 100 is in flight: 100
	// commit point after 100: 105
}

func ExampleTracker() {
	tr := watermark.NewTracker(watermark.WithWindow(1 << 12))
	orders := watermark.TopicPartition{Topic: "orders", Partition: 0}
	p := tr.Assign(orders, 0)
	_ = p.Track(0)
	_ = p.Track(1)
	_ = p.Ack(1)

	for tp, p := range tr.All() {
		fmt.Printf("%s/%d: commit %d, pending %d\n", tp.Topic, tp.Partition, p.Committable(), p.Pending())
	}
	if p, ok := tr.Revoke(orders); ok {
		fmt.Println("final commit on revoke:", p.Committable(), "closed:", p.Closed())
	}
	// Output:
	// orders/0: commit 0, pending 1
	// final commit on revoke: 0 closed: true
}
