// Prints apimachinery's answer for each quantity read from stdin, one per line:
// "<input>\t<canonical>" or "<input>\tERROR". Its output is ../quantities.golden;
// regenerate with `make golden-quantity` when the pinned Kubernetes changes.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		text := in.Text()
		q, err := resource.ParseQuantity(text)
		if err != nil {
			fmt.Printf("%s\tERROR\n", text)
			continue
		}
		out, _ := q.MarshalJSON()
		fmt.Printf("%s\t%s\n", text, strings.Trim(string(out), `"`))
	}
}
