// A minimal Node.js language host for the Pulumi engine, built by scripts/pulumi-engine.sh.
//
// Why it exists: the Go module proxy serves the Pulumi CLI (pkg/v3) and SDK (sdk/v3) but not
// pulumi's language-host modules (sdk/nodejs/cmd/pulumi-language-nodejs/v3 answers 403, at any
// version or commit), so the engine's own Node host cannot be built from modules. This host does
// what `pulumi preview`/`up` need from one: it starts @pulumi/pulumi's own run script (the
// program's node_modules/@pulumi/pulumi/cmd/run) with the engine's arguments, config and the
// project's `nodeargs`, and reports the program's exit like the real host (exit 32 = the program
// already reported its error). It reports no required plugins: the tests put the providers on
// PATH and pass --skip-plugin-pre-install.
//
// It also runs source-based plugins (RunPlugin), which is how `pulumi package add <this repo>` and
// a program of another language reach our components: like the engine's own host, it starts
// @pulumi/pulumi's cmd/run-plugin with the plugin's folder, the `nodeargs` of PulumiPlugin.yaml
// placed after run-plugin's path (so they never reach node), and streams the plugin's output
// back. InstallDependencies does nothing but check that node_modules is there: the real host runs
// `npm install`, which the tests must not do in a repository whose node_modules is shared.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Set with -ldflags -X main.version=... to the CLI version it is built beside.
var version = "0.0.0-dev"

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
}

func main() {
	engineAddress := ""
	for _, arg := range os.Args[1:] {
		if arg == "-version" || arg == "--version" {
			fmt.Println(version)
			return
		}
		// The engine passes logging/tracing flags first and its own address last.
		if !strings.HasPrefix(arg, "-") {
			engineAddress = arg
		}
	}
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, &host{engineAddress: engineAddress})
			return nil
		},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: cannot serve: %v\n", err)
		os.Exit(1)
	}
	// The engine reads the port from our first line of output.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-nodejs: %v\n", err)
		os.Exit(1)
	}
}

func (h *host) Handshake(
	context.Context, *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (h *host) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

func (h *host) GetRequiredPlugins(
	context.Context, *pulumirpc.GetRequiredPluginsRequest,
) (*pulumirpc.GetRequiredPluginsResponse, error) {
	return &pulumirpc.GetRequiredPluginsResponse{}, nil
}

func (h *host) GetProgramDependencies(
	context.Context, *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	return &pulumirpc.GetProgramDependenciesResponse{}, nil
}

func (h *host) About(context.Context, *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	node, _ := exec.LookPath("node")
	return &pulumirpc.AboutResponse{Executable: node}, nil
}

// findRunScript looks for @pulumi/pulumi's cmd/NAME script in the node_modules of dir or a
// parent, as Node's own resolution would.
func findRunScript(dir, name string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		candidate := filepath.Join(d, "node_modules", "@pulumi", "pulumi", "cmd", name)
		if _, err := os.Stat(candidate); err == nil {
			return candidate, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no node_modules/@pulumi/pulumi above %s: run npm ci first", dir)
		}
	}
}

func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	info := req.GetInfo()
	programDir := req.GetPwd()
	entry := "."
	var nodeargs []string
	typescript := true
	if info != nil {
		if info.GetProgramDirectory() != "" {
			programDir = info.GetProgramDirectory()
		}
		if info.GetEntryPoint() != "" {
			entry = info.GetEntryPoint()
		}
		opts := info.GetOptions().AsMap()
		if s, ok := opts["nodeargs"].(string); ok {
			nodeargs = strings.Fields(s)
		}
		if b, ok := opts["typescript"].(bool); ok {
			typescript = b
		}
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not on PATH")
	}
	runScript, err := findRunScript(programDir, "run")
	if err != nil {
		return nil, err
	}

	args := append([]string{}, nodeargs...)
	args = append(args, runScript)
	add := func(k, v string) {
		if v != "" {
			args = append(args, "--"+k, v)
		}
	}
	add("monitor", req.GetMonitorAddress())
	add("engine", h.engineAddress)
	add("organization", req.GetOrganization())
	add("project", req.GetProject())
	add("stack", req.GetStack())
	add("pwd", req.GetPwd())
	if info != nil {
		add("root-directory", info.GetRootDirectory())
	}
	if req.GetDryRun() {
		args = append(args, "--dry-run")
	}
	add("parallel", fmt.Sprint(req.GetParallel()))
	args = append(args, filepath.Join(programDir, entry))
	args = append(args, req.GetArgs()...)

	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(req.GetConfigSecretKeys())
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = req.GetPwd()
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(),
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys),
		fmt.Sprintf("PULUMI_NODEJS_TYPESCRIPT=%t", typescript),
	)
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			// 32: the program reported its error through the engine already.
			if exitErr.ExitCode() == 32 {
				return &pulumirpc.RunResponse{Bail: true}, nil
			}
			return &pulumirpc.RunResponse{
				Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
			}, nil
		}
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run node: %v", err)}, nil
	}
	return &pulumirpc.RunResponse{}, nil
}

func (h *host) InstallDependencies(
	req *pulumirpc.InstallDependenciesRequest, server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	dir := req.GetInfo().GetProgramDirectory()
	if _, err := findRunScript(dir, "run-plugin"); err != nil {
		return err
	}
	return server.Send(&pulumirpc.InstallDependenciesResponse{
		Stdout: []byte("node_modules of " + dir + " is installed (this host never runs npm install)\n"),
	})
}

func (h *host) RunPlugin(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	if req.GetKind() != "" && req.GetKind() != "resource" {
		return fmt.Errorf("this Node.js host runs resource plugins only, not %q plugins", req.GetKind())
	}
	info := req.GetInfo()
	pluginDir := info.GetProgramDirectory()
	node, err := exec.LookPath("node")
	if err != nil {
		return errors.New("node is not on PATH")
	}
	runPlugin, err := findRunScript(pluginDir, "run-plugin")
	if err != nil {
		return err
	}
	args := []string{runPlugin}
	if s, ok := info.GetOptions().AsMap()["nodeargs"].(string); ok {
		args = append(args, strings.Fields(s)...)
	}
	args = append(args, pluginDir)
	args = append(args, req.GetArgs()...)

	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	cmd := exec.CommandContext(server.Context(), node, args...)
	cmd.Dir = req.GetPwd()
	cmd.Env = req.GetEnv()
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return fmt.Errorf("plugin %s exited with code %d", pluginDir, exitErr.ExitCode())
		}
		return fmt.Errorf("could not run node for plugin %s: %w", pluginDir, err)
	}
	return closer.Close()
}
