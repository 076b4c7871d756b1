// Package cmd holds the kubectl logexport command.
package cmd

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/kubectl/pkg/util/templates"

	// Client auth plugins (exec, OIDC) for kubeconfigs that use them.
	_ "k8s.io/client-go/plugin/pkg/client/auth"

	"github.com/logexport/kubectl-logexport/pkg/config"
	"github.com/logexport/kubectl-logexport/pkg/export"
	"github.com/logexport/kubectl-logexport/pkg/podselect"
	"github.com/logexport/kubectl-logexport/pkg/store"
	"github.com/logexport/kubectl-logexport/pkg/target"
	"github.com/logexport/kubectl-logexport/pkg/version"
)

var (
	longDesc = templates.LongDesc(`
		Export the logs of pods into a local directory, and keep them.

		Pods are chosen by name patterns (Go regular expressions, matched anywhere in the
		name) in the current namespace, in --namespace, or with --all-namespaces in every
		namespace. Each container's log is merged into DIR/NAMESPACE/POD/CONTAINER.log:
		every run appends exactly the lines that are not stored yet, in order, so that running
		it again and again (by hand, from cron, from a CronJob) keeps a complete copy of every
		log, also across container restarts and after the pods are gone.

		--dir s3://BUCKET/PREFIX exports into a bucket instead (AWS S3 or an S3-compatible
		server, configured by the AWS environment), as gzipped segment objects; pull copies
		it back into a directory.`)

	examples = templates.Examples(`
		# Export every pod whose name matches redis, in all namespaces, into ./logs
		kubectl logexport --all-namespaces -p 'redis.*'

		# Two patterns in the current namespace
		kubectl logexport redis lighthouse

		# Pods with a label, into another directory
		kubectl logexport -n shop -l app=cart -d /var/backups/logs

		# Only the first export of a container reaches back at most one hour
		kubectl logexport --since 1h

		# Show what would be exported, and where, without writing anything
		kubectl logexport -A --dry-run

		# The selections of a configuration file (apiVersion: logexport/v1alpha1, kind: Config)
		kubectl logexport --config logexport.yaml --dry-run

		# The summary as JSON
		kubectl logexport -o json

		# Keep following every pod of the namespace, with a status line every minute
		kubectl logexport -f --summary-interval 1m

		# Into a bucket of an S3-compatible server, then read it back into ./logs
		AWS_ENDPOINT_URL=http://minio.local:9000 kubectl logexport -A -d s3://logs/prod
		kubectl logexport pull s3://logs/prod`)
)

// Options are the command's settings.
type Options struct {
	configFlags *genericclioptions.ConfigFlags
	genericiooptions.IOStreams
	// Bucket connects to an s3:// --dir.
	Bucket bucketFlags
	// SegmentInterval is a followed container's checkpoint interval in a bucket.
	SegmentInterval time.Duration
	// writeCtx bounds the destination's writes: the lease's, when one is held.
	writeCtx context.Context

	Patterns          []string
	ExcludePods       []string
	Containers        []string
	ExcludeContainers []string
	AllNamespaces     bool
	LabelSelector     string
	FieldSelector     string
	Dir               string
	Timestamps        bool
	ResumeTail        int64
	GroupReadable     bool
	Since             time.Duration
	SinceTime         string
	MaxLogRequests    int
	// MaxLogRequestsSet says --max-log-requests was given: following bounds its streams only then.
	MaxLogRequestsSet bool
	// ChunkSize is the number of pods asked for per list request; 0 asks for all in one.
	ChunkSize         int64
	DryRun            bool
	Output            string
	Summary           string
	Follow            bool
	SummaryInterval   time.Duration
	ReconnectInterval time.Duration
	// MetricsBindAddress, with Follow, serves metrics and probes ("": none).
	MetricsBindAddress string

	// Retain removes the logs of pods gone for that long (0: kept); Compress stores the logs of
	// pods that are gone gzipped (see store.Dir.Maintain).
	Retain   time.Duration
	Compress bool

	// ConfigFile is --config: a file of selections (pkg/config); "" for none.
	ConfigFile string

	// shardOptions split the pods among runs: --shard-index of --total-shards (shard.go).
	shardOptions

	namespace  string
	config     *config.Config
	selections []podselect.Selection
	since      time.Time
	client     kubernetes.Interface
	now        func() time.Time
	// journal is the run's record in the run journal, from its start on.
	journal *journal
}

// NewOptions returns Options with the defaults.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{
		configFlags:    genericclioptions.NewConfigFlags(true),
		IOStreams:      streams,
		Dir:            "logs",
		MaxLogRequests: 10,
		ChunkSize:      podselect.DefaultChunkSize,
		Summary:        summaryAll,
		// A minute of a followed container's lines per object: Vector's S3 sink batches
		// five, a follower's checkpoint in a directory is two seconds.
		SegmentInterval: time.Minute,
		now:             time.Now,
		shardOptions:    newShardOptions(),
	}
}

// listChunk is ChunkSize as podselect.Scope takes it.
func (o *Options) listChunk() int64 {
	if o.ChunkSize == 0 {
		return -1
	}
	return o.ChunkSize
}

// NewCmd returns the kubectl logexport command.
func NewCmd(streams genericiooptions.IOStreams) *cobra.Command {
	return newCmd(NewOptions(streams))
}

// newCmd is the command that runs o.
func newCmd(o *Options) *cobra.Command {
	streams := o.IOStreams
	cmd := &cobra.Command{
		// The name is the binary's: cobra names the completion scripts' command after it, and the
		// standalone binary is what the shell sees (kubectl completes the plugin through
		// kubectl_complete-logexport, which runs the same binary). Help speaks as kubectl logexport.
		Use:     "kubectl-logexport [REGEX...] [flags]",
		Short:   "Export pod logs into a local directory or a bucket, incrementally and exactly",
		Long:    longDesc,
		Example: examples,
		// Positional arguments are pod patterns; a pattern that is also a subcommand name goes through -p.
		Args:          cobra.ArbitraryArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl logexport"},
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Complete(c, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(c.Context())
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.Patterns, "pod", "p", nil, "Export pods whose name matches this regular expression (repeatable; positional arguments are patterns too)")
	f.StringArrayVar(&o.ExcludePods, "exclude-pod", nil, "Skip pods whose name matches this regular expression (repeatable)")
	f.StringArrayVarP(&o.Containers, "container", "c", nil, "Export only containers whose name matches this regular expression (repeatable)")
	f.StringArrayVar(&o.ExcludeContainers, "exclude-container", nil, "Skip containers whose name matches this regular expression (repeatable)")
	f.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false, "Export pods in all namespaces")
	f.StringVarP(&o.LabelSelector, "selector", "l", "", "Label selector to filter pods on")
	f.StringVar(&o.FieldSelector, "field-selector", "", "Field selector to filter pods on")
	f.StringVar(&o.ConfigFile, "config", "", "Export the selections of this file (YAML, apiVersion: logexport/v1alpha1, kind: Config); selection flags narrow them")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml", "json")
	f.StringVarP(&o.Dir, "dir", "d", o.Dir, "Directory to export into, or a bucket: s3://BUCKET/PREFIX (credentials from the AWS environment, files or role)")
	o.Bucket.AddFlags(f)
	f.DurationVar(&o.SegmentInterval, "segment-interval", o.SegmentInterval, "With --follow into a bucket, upload a followed container's new lines this often, as one object (a killed follower fetches that much again)")
	f.DurationVar(&o.Retain, "retain", 0, "Remove the logs (and checkpoints and gaps) of containers whose pod has been gone, and whose last line is older, for this long (720h); trims the run journal too (default: keep everything)")
	f.BoolVar(&o.Compress, "compress", false, "Store the log of a pod that is gone gzipped, as CONTAINER.N.log.gz (readable by zcat)")
	f.BoolVar(&o.Timestamps, "timestamps", false, "Keep each line's RFC3339Nano timestamp in front of it (fixed when the directory is created)")
	f.BoolVar(&o.GroupReadable, "group-readable", false, "Create log files 0640 and directories 0750, for a group that reads them (default: 0600 and 0700, the owner only)")
	f.DurationVar(&o.Since, "since", 0, "On a container's first export, only lines newer than this (5s, 2m, 3h); never limits a resume")
	f.StringVar(&o.SinceTime, "since-time", "", "On a container's first export, only lines after this RFC3339 time; never limits a resume")
	f.IntVar(&o.MaxLogRequests, "max-log-requests", o.MaxLogRequests, "Log requests at once; with --follow, streams open at once, containers beyond it taking turns (default with --follow: a stream for every container)")
	f.Int64Var(&o.ChunkSize, "chunk-size", o.ChunkSize, "List pods in chunks of this many rather than all at once, as kubectl get does (0: all at once)")
	// Hidden: a test's way to put a resume's tail anywhere, and a way out should a server
	// serve tails unlike the kubelet.
	f.Int64Var(&o.ResumeTail, "resume-tail", 0, "Entries a resume asks for first, from the log's end (0: estimated from the stored log's rate; -1: never, always from its checkpoint's second)")
	_ = f.MarkHidden("resume-tail")
	f.Var(dryRunValue{&o.DryRun}, "dry-run", `Must be "none" or "client" (also the flag alone): print the containers that would be exported and where, write nothing`)
	f.Lookup("dry-run").NoOptDefVal = "client"
	f.StringVarP(&o.Output, "output", "o", "", "Summary format: '' (a table) or json")
	f.StringVar(&o.Summary, "summary", o.Summary, "Which containers the summary lists: all, changed (those that got lines, a gap or an error, or did not start) or none (the totals only)")
	f.BoolVarP(&o.Follow, "follow", "f", false, "Keep running: follow every selected container, pick up new pods, until SIGINT or SIGTERM")
	f.DurationVar(&o.SummaryInterval, "summary-interval", 0, "With --follow, print a status line to stderr this often (0: only on a terminal)")
	f.DurationVar(&o.ReconnectInterval, "reconnect-interval", 5*time.Minute, "With --follow, reopen each stream this often from its checkpoint (0: never), in case the server missed a log rotation")
	f.StringVar(&o.MetricsBindAddress, "metrics-bind-address", "", "With --follow, serve Prometheus metrics on /metrics and probes on /healthz and /readyz at this address (host:port, like :8080; default: none)")
	addShardFlags(f, o)
	// The kubeconfig flags get a section of their own in --help, but for -n: it goes with -A.
	kubeconfigFlags := pflag.NewFlagSet("kubeconfig", pflag.ContinueOnError)
	o.configFlags.AddFlags(kubeconfigFlags)
	annotateFlags(kubeconfigFlags, groupKubeconfig, "namespace")
	kubeconfigFlags.Lookup("namespace").Usage = "Export pods in this namespace (default: the current context's namespace)"
	f.AddFlagSet(kubeconfigFlags)
	addKlogFlags(cmd)
	groupFlags(cmd)
	registerCompletions(cmd, o)
	cmd.AddCommand(newVersionCmd(streams))
	cmd.AddCommand(newStatusCmd(streams))
	cmd.AddCommand(newPullCmd(streams))
	return cmd
}

func addKlogFlags(cmd *cobra.Command) {
	gofs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(gofs)
	for _, name := range []string{"v", "vmodule"} {
		cmd.PersistentFlags().AddGoFlag(gofs.Lookup(name))
	}
	annotateFlags(cmd.PersistentFlags(), groupGlobal)
	cmd.PersistentFlags().Lookup("v").Shorthand = "v"
}

func newVersionCmd(streams genericiooptions.IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of kubectl logexport",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(streams.Out, "kubectl-logexport %s\n", version.Get())
			if version.Commit != "" {
				fmt.Fprintf(streams.Out, "commit %s, built %s\n", version.Commit, version.Date)
			}
			return nil
		},
	}
}

// Complete fills in what the flags leave implicit: the patterns from the arguments and the
// namespace of the current context.
func (o *Options) Complete(c *cobra.Command, args []string) error {
	o.Patterns = append(o.Patterns, args...)
	if c != nil && c.Flags().Changed("max-log-requests") {
		o.MaxLogRequestsSet = true
	}
	ns, _, err := o.configFlags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return fmt.Errorf("reading kubeconfig: %w", err)
	}
	o.namespace = ns
	if err := o.completeShard(c); err != nil {
		return err
	}
	return o.loadConfig()
}

// Validate checks the settings before anything talks to the cluster.
func (o *Options) Validate() error {
	sel, err := podselect.Compile(o.Patterns, o.ExcludePods, o.Containers, o.ExcludeContainers)
	if err != nil {
		return err
	}
	if err := o.buildSelections(sel); err != nil {
		return err
	}
	if err := o.validateShard(); err != nil {
		return err
	}
	switch {
	case o.MaxLogRequests < 1:
		return fmt.Errorf("--max-log-requests must be at least 1")
	case o.ChunkSize < 0:
		return fmt.Errorf("--chunk-size must not be negative")
	case o.Output != "" && o.Output != "json":
		return fmt.Errorf("unsupported output format %q: use json, or leave it empty for a table", o.Output)
	case validateSummary(o.Summary) != nil:
		return validateSummary(o.Summary)
	case o.Since < 0:
		return fmt.Errorf("--since must be positive")
	case o.Since != 0 && o.SinceTime != "":
		return fmt.Errorf("--since and --since-time cannot be used together")
	case o.Dir == "":
		return fmt.Errorf("--dir must not be empty")
	case o.SegmentInterval <= 0:
		return fmt.Errorf("--segment-interval must be positive")
	case o.toBucket() && (o.Retain > 0 || o.Compress):
		return fmt.Errorf("--retain and --compress apply to a local directory: in a bucket, expire objects with its lifecycle rules (by key prefix logs/)")
	case o.toBucket() && o.GroupReadable:
		return fmt.Errorf("--group-readable applies to a local directory: a bucket's access is its policy's")
	case o.SummaryInterval < 0 || o.ReconnectInterval < 0:
		return fmt.Errorf("--summary-interval and --reconnect-interval must be positive")
	}
	if err := validateMetricsAddress(o.MetricsBindAddress, o.Follow); err != nil {
		return err
	}
	if err := o.validateRetention(); err != nil {
		return err
	}
	if o.SinceTime != "" {
		t, err := time.Parse(time.RFC3339Nano, o.SinceTime)
		if err != nil {
			return fmt.Errorf("invalid --since-time %q: use RFC3339, like 2024-01-02T15:04:05Z", o.SinceTime)
		}
		o.since = t
	} else if o.Since > 0 {
		o.since = o.now().Add(-o.Since)
	}
	return nil
}

func (o *Options) clientset() (kubernetes.Interface, error) {
	if o.client != nil {
		return o.client, nil
	}
	config, err := o.restConfig()
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(config)
	if err != nil {
		return nil, fmt.Errorf("creating client: %w", err)
	}
	return c, nil
}

// restConfig is the kubeconfig's client configuration as a run uses it.
func (o *Options) restConfig() (*rest.Config, error) {
	config, err := o.configFlags.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig: %w", err)
	}
	// Every container is a request: client-go's default of 5 a second would throttle thousands of
	// containers to minutes. --max-log-requests bounds the load; the API server's own priority and
	// fairness does the rest.
	config.QPS = -1
	config.UserAgent = "kubectl-logexport/" + version.Get()
	// Pods are listed and read back by the thousand; protobuf decodes them several times
	// cheaper than JSON. Log bodies are plain text either way.
	config.ContentType = runtime.ContentTypeProtobuf
	config.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	if !o.Follow {
		// A one-shot run reads its logs over HTTP/1.1, a connection per log request at once:
		// over HTTP/2 the client acknowledges every few KiB read with a flow-control frame and
		// hands each frame from its connection's goroutine to the stream's, which made a third
		// of a full export's CPU (test/bench, workload a: 2.01 s against 3.00 s a run; c128
		// 2.40 against 3.60). A follower keeps HTTP/2: a thousand streams share one connection
		// rather than open a thousand.
		config.NextProtos = []string{"http/1.1"}
		idle := max(o.MaxLogRequests, 1) + 2 // the log requests, a listing and a status check
		config.Wrap(func(rt http.RoundTripper) http.RoundTripper {
			// client-go keeps 25 idle connections a host: more log requests at once would
			// close and dial (TCP and TLS) a connection for every container beyond.
			if t := baseTransport(rt); t != nil && t.MaxIdleConnsPerHost < idle {
				t.MaxIdleConnsPerHost = idle
			}
			return rt
		})
	}
	return config, nil
}

// baseTransport is the *http.Transport under client-go's wrappers (its transport cache's and
// CA file rotation's), nil if there is none.
func baseTransport(rt http.RoundTripper) *http.Transport {
	for rt != nil {
		switch t := rt.(type) {
		case *http.Transport:
			return t
		case utilnet.RoundTripperWrapper:
			rt = t.WrappedRoundTripper()
		default:
			return nil
		}
	}
	return nil
}

// followStreams is the follower's bound on open streams: none (0) unless --max-log-requests was
// given. Following 1,000 containers with 10 streams left each waiting for minutes between turns;
// a stream per container is what a follower is for (test/bench, workload f).
func (o *Options) followStreams() int {
	if o.MaxLogRequestsSet {
		return o.MaxLogRequests
	}
	return 0
}

// Run lists the pods and exports their containers.
func (o *Options) Run(ctx context.Context) (err error) {
	client, err := o.clientset()
	if err != nil {
		return err
	}
	o.writeCtx = ctx
	if (o.shard.Enabled() || o.toBucket()) && !o.DryRun {
		// Before the destination is opened: a second process for the shard waits here rather
		// than fail on the directory's lock. A bucket has no lock of its own: the lease is its
		// one writer. Released once the destination is closed.
		held, release, err := o.holdShard(ctx, client)
		if err != nil {
			return err
		}
		defer release()
		// The run stops when the lease is lost; the destination's writes stop then too, but
		// not at SIGTERM, when what is complete is saved.
		o.writeCtx = held
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		stop := context.AfterFunc(held, func() { cancel(context.Cause(held)) })
		defer stop()
	}
	if o.Follow && !o.DryRun {
		// A follower would wait for pods there forever; failing makes a typo show (a Deployment's
		// restarts), and a restart picks the namespace up once it is created.
		if err := o.namespacesExist(ctx, client); err != nil {
			return err
		}
		return o.runFollow(ctx, client)
	}
	var dir destination
	if !o.DryRun {
		// Held from before the listing, so that a run that cannot list is in the journal too.
		if dir, err = o.openRun(ctx, "once"); err != nil {
			return err
		}
		defer closeDest(dir, &err)
		defer o.finishRun(dir, &err)
	}
	targets, nsErrs, err := podselect.Select(ctx, client, o.selections)
	if err != nil {
		return err
	}
	klog.V(1).InfoS("selected", "selections", len(o.selections), "containers", targets.Len())
	if nsErrs, err = o.noMatch(ctx, client, targets, nsErrs); err != nil {
		return err
	}
	if o.DryRun {
		return o.printDryRun(targets.All(), nsErrs)
	}
	e := &export.Exporter{Client: client, Dest: dir, Options: o.exportOptions()}
	selected := targets.Len()
	p := newProgress(o.ErrOut, selected)
	// Each result becomes its row, the listed pod let go; the row is held only if the summary
	// prints it at the end (runSummary).
	sum := o.newRunSummary()
	e.ExportEach(ctx, targets, o.MaxLogRequests, func(i int, r export.Result) {
		sum.add(i, containerSummary(r))
		p.done(r)
	})
	p.wait()
	s := sum.summary(nsErrs)
	var maintained *store.Maintained
	var merr error
	if ctx.Err() == nil {
		// After the exports: nothing writes to a log that retention removes or compresses.
		if local, ok := dir.(*store.Dir); ok {
			maintained, merr = o.maintain(ctx, client, local)
		}
		s.Retention = maintained
	}
	o.ranSummary(s)
	if err := o.printSummary(s, sum.json); err != nil {
		return err
	}
	o.printMaintained(maintained)
	if err := shardLost(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: progress is saved, run again to continue")
	}
	if err := failures(s, selected, nsErrs); err != nil || merr == nil {
		return err
	}
	return merr
}

// gatherWait is how long a round of a one-shot run's commits may wait for more (see
// store.GatherCommits): on make bench's (b), 2,000 new logs of 20 KiB, about 200 rounds rather
// than 500 and a fifth less CPU (1.11x the raw floor's time rather than 1.19x; docs/performance.md).
const gatherWait = 50 * time.Millisecond

// openDir opens and locks the export directory with the file modes asked for.
func (o *Options) openDir() (*store.Dir, error) {
	var opts []store.Option
	if o.GroupReadable {
		opts = append(opts, store.GroupReadable())
	}
	if !o.Follow {
		// Up to two commits for each log request: the exports waiting for their round hold
		// none (export.commitsPerStream lets three times as many wait).
		opts = append(opts, store.GatherCommits(2*o.MaxLogRequests, gatherWait))
	}
	return store.Open(o.Dir, o.Timestamps, opts...)
}

func failures(s Summary, containers int, nsErrs []podselect.NamespaceError) error {
	var failed []string
	if s.Failed > 0 {
		failed = append(failed, fmt.Sprintf("%d of %d containers failed", s.Failed, containers))
	}
	if len(nsErrs) > 0 {
		failed = append(failed, fmt.Sprintf("%d namespaces could not be read", len(nsErrs)))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s (the rest is exported)", strings.Join(failed, ", "))
	}
	return nil
}

func (o *Options) printDryRun(targets []target.Target, nsErrs []podselect.NamespaceError) error {
	w := newTable(o.Out)
	if len(targets) > 0 {
		fmt.Fprintln(w, "NAMESPACE\tPOD\tCONTAINER\tFILE")
	}
	for _, t := range targets {
		loc, err := o.logLocation(t.Namespace, t.Pod, t.Container)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.Namespace, t.Pod, t.Container, loc)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, e := range nsErrs {
		fmt.Fprintf(o.ErrOut, "warning: %v\n", e)
	}
	return nil
}

// Summary is the machine-readable result of a run (-o json).
type Summary struct {
	// Containers are the rows --summary lists; the totals count every selected container.
	Containers []ContainerSummary `json:"containers"`
	Namespaces []NamespaceSummary `json:"failedNamespaces,omitempty"`
	Selected   int                `json:"selected"`
	Lines      int64              `json:"lines"`
	Bytes      int64              `json:"bytes"`
	Failed     int                `json:"failed"`
	Gaps       int                `json:"gaps"`
	// Retention is what --retain and --compress did.
	Retention *store.Maintained `json:"retention,omitempty"`
}

// ContainerSummary is one container's part of the Summary.
type ContainerSummary struct {
	Namespace string       `json:"namespace"`
	Pod       string       `json:"pod"`
	Container string       `json:"container"`
	File      string       `json:"file,omitempty"`
	Lines     int64        `json:"lines"`
	Bytes     int64        `json:"bytes"`
	Status    string       `json:"status"`
	Gaps      []export.Gap `json:"gaps,omitempty"`
	Error     string       `json:"error,omitempty"`
}

// NamespaceSummary is a namespace that could not be read.
type NamespaceSummary struct {
	Namespace string `json:"namespace"`
	Error     string `json:"error"`
}

func newSummary(results []export.Result, nsErrs []podselect.NamespaceError) Summary {
	rows := make([]ContainerSummary, 0, len(results))
	for _, r := range results {
		rows = append(rows, containerSummary(r))
	}
	return summarize(rows, nsErrs)
}

// containerSummary is a result's row.
func containerSummary(r export.Result) ContainerSummary {
	c := ContainerSummary{Namespace: r.Namespace, Pod: r.Pod, Container: r.Container, File: r.File,
		Lines: r.Lines, Bytes: r.Bytes, Gaps: r.Gaps}
	switch {
	case r.Err != nil:
		c.Status, c.Error = statusFailed, r.Err.Error()
	case r.Skipped != "":
		c.Status = r.Skipped
	case len(r.Gaps) > 0:
		c.Status = "gap"
	case r.Lines == 0:
		c.Status = statusUpToDate
	default:
		c.Status = "ok"
	}
	return c
}

// summarize is the summary of the rows, which it keeps, and the namespaces that could not be read.
func summarize(rows []ContainerSummary, nsErrs []podselect.NamespaceError) Summary {
	s := Summary{Containers: rows}
	for _, c := range rows {
		s.count(c)
	}
	s.Namespaces = namespaceSummaries(nsErrs)
	return s
}

// count adds a container's row to the totals.
func (s *Summary) count(c ContainerSummary) {
	s.Selected++
	if c.Status == statusFailed {
		s.Failed++
	}
	s.Lines += c.Lines
	s.Bytes += c.Bytes
	s.Gaps += len(c.Gaps)
}

func namespaceSummaries(nsErrs []podselect.NamespaceError) []NamespaceSummary {
	var out []NamespaceSummary
	for _, e := range nsErrs {
		out = append(out, NamespaceSummary{Namespace: e.Namespace, Error: e.Err.Error()})
	}
	return out
}

// printSummary prints all, or with -o json and streamed set, the end of the JSON whose rows
// streamed wrote already.
func (o *Options) printSummary(all Summary, streamed *jsonSummary) error {
	s := all.only(o.Summary)
	if o.Output == "json" {
		if o.Summary != summaryAll {
			// The rows --summary hides may not hold them all: the problems are told anyway.
			o.tellProblems(all)
		}
		if streamed != nil {
			return streamed.end(s)
		}
		return writeJSON(o.Out, s)
	}
	// As kubectl get: no header over no rows.
	if len(s.Containers) > 0 {
		w := newTable(o.Out)
		fmt.Fprintln(w, "NAMESPACE\tPOD\tCONTAINER\tLINES\tBYTES\tSTATUS")
		for _, c := range s.Containers {
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%s\n", c.Namespace, c.Pod, c.Container, c.Lines, c.Bytes, c.Status)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	o.tellProblems(all)
	for _, n := range s.Namespaces {
		fmt.Fprintf(o.ErrOut, "error: namespace %s: %s\n", n.Namespace, n.Error)
	}
	fmt.Fprintf(o.ErrOut, "exported %d lines (%d bytes) from %d containers into %s%s\n", s.Lines, s.Bytes, s.Selected, o.Dir, o.shardNote())
	return nil
}

// tellProblems says every gap and error on stderr, whatever --summary hides: they are what a run
// from cron is read for.
func (o *Options) tellProblems(all Summary) {
	for _, c := range all.Containers {
		for _, g := range c.Gaps {
			fmt.Fprintf(o.ErrOut, "warning: %s/%s/%s: %s\n", c.Namespace, c.Pod, c.Container, g)
		}
		if c.Error != "" {
			fmt.Fprintf(o.ErrOut, "error: %s/%s/%s: %s\n", c.Namespace, c.Pod, c.Container, c.Error)
		}
	}
}
