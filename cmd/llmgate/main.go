// Command llmgate runs the gateway and admin API as one local server, against DynamoDB Local
// (LLMGATE_DYNAMODB_ENDPOINT) or DynamoDB in AWS.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/net/netutil"

	"github.com/llmgate/llmgate/internal/app"
	"github.com/llmgate/llmgate/internal/config"
	"github.com/llmgate/llmgate/internal/metrics/prom"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("llmgate stopped", "error", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	configPath := flag.String("config", "", "path to a LiteLLM-format config.yaml")
	port := flag.Int("port", 0, "port to listen on (default LLMGATE_PORT or 4000)")
	host := flag.String("host", "127.0.0.1", "address to listen on")
	banner := flag.Bool("banner", false, "print the master key and a curl example on stdout (make run)")
	createTable := flag.Bool("create-table", false, "create the table on the local DynamoDB (LLMGATE_DYNAMODB_ENDPOINT) and exit (make sam-table)")
	flag.Parse()

	cfg, warnings, err := config.Load(*configPath)
	for _, w := range warnings {
		log.Warn("config", "warning", w)
	}
	if err != nil {
		return err
	}
	if *port != 0 {
		cfg.Settings.Port = *port
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	pm := prom.New()
	a, err := app.New(ctx, cfg, log, app.WithMetrics(pm, pm.Handler()))
	if err != nil {
		return err
	}
	if cfg.Settings.DynamoDBEndpoint != "" {
		if err := a.Store.EnsureTable(ctx); err != nil {
			return err
		}
	}
	if *createTable {
		if cfg.Settings.DynamoDBEndpoint == "" {
			return errors.New("-create-table creates the table on a local DynamoDB: set LLMGATE_DYNAMODB_ENDPOINT")
		}
		log.Info("table ready", "table", cfg.Settings.TableName, "endpoint", cfg.Settings.DynamoDBEndpoint)
		return nil
	}

	addr := net.JoinHostPort(*host, strconv.Itoa(cfg.Settings.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln = netutil.LimitListener(ln, cfg.Settings.MaxConnections)
	srv := newServer(a.Handler(), cfg.Settings)
	log.Info("llmgate listening", "addr", ln.Addr().String(), "table", cfg.Settings.TableName, "models", len(cfg.ModelList))
	if *banner {
		printBanner(ln.Addr().String(), cfg)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	go a.Rotator.RunEvery(ctx, cfg.Settings.RotatorSchedule.Std())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// printBanner tells a person at the terminal how to call the server. It goes to stdout, only
// when asked for, never to the JSON log, so the master key does not land in log storage.
func printBanner(addr string, cfg *config.Config) {
	model := "<model>"
	if len(cfg.ModelList) > 0 {
		model = cfg.ModelList[0].ModelName
	}
	key := cfg.GeneralSettings.MasterKey
	if key == "" {
		key = "<none: auth is off>"
	}
	fmt.Printf(`
llmgate is ready on http://%[1]s
  master key: %[2]s
  try:
    curl http://%[1]s/v1/chat/completions \
      -H "Authorization: Bearer %[2]s" -H "Content-Type: application/json" \
      -d '{"model": "%[3]s", "messages": [{"role": "user", "content": "Hello!"}]}'

`, addr, key, model)
}
