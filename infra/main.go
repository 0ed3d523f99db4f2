// Command infra is llmgate's CDK app. `make synth` and `make deploy` run it through the
// pinned aws-cdk CLI (cdk.json); its settings come from CDK context (-c name=value or
// cdk.json), listed in props.go.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	props, err := PropsFromContext(app)
	if err != nil {
		fmt.Fprintln(os.Stderr, "llmgate infra:", err)
		os.Exit(1)
	}
	if _, err := NewStack(app, props); err != nil {
		fmt.Fprintln(os.Stderr, "llmgate infra:", err)
		os.Exit(1)
	}
	app.Synth(nil)
}
