// Package kubernetes_test validates deploy/kubernetes/fuseguard.yaml with
// the Kubernetes API types, strictly: a field the API does not know (a
// typo, a wrong indentation) fails the test. It is a test-only package, so
// the node binary does not link the Kubernetes API.
package kubernetes_test

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"

	"github.com/fuseguard/fuseguard/config"
	"github.com/fuseguard/fuseguard/fuseconn"
	"github.com/fuseguard/fuseguard/test/fgcmd"
)

// The kubelet's pod directory, the dedicated prefix the deployment turns on.
const kubeletPods = "/var/lib/kubelet/pods"

// manifest is fuseguard.yaml decoded, one object of each kind.
type manifest struct {
	namespace      corev1.Namespace
	serviceAccount corev1.ServiceAccount
	configMap      corev1.ConfigMap
	daemonSet      appsv1.DaemonSet
	service        corev1.Service
}

// decode splits the YAML stream and decodes each document with
// apimachinery's strict serializer (sigs.k8s.io/json underneath: an
// unknown field, a field spelled in another case, a duplicate field all
// fail) into the API type its apiVersion and kind name; an unexpected
// kind, or a repeated one, fails too.
func decode(t *testing.T, data []byte) manifest {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := appsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	strict := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
	var m manifest
	seen := map[string]bool{}
	for i, doc := range bytes.Split(data, []byte("\n---\n")) {
		obj, gvk, err := strict.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("document %d: strict decoding: %v", i, err)
		}
		key := gvk.GroupVersion().String() + "/" + gvk.Kind
		if seen[key] {
			t.Fatalf("document %d: a second %s", i, key)
		}
		seen[key] = true
		switch o := obj.(type) {
		case *corev1.Namespace:
			m.namespace = *o
		case *corev1.ServiceAccount:
			m.serviceAccount = *o
		case *corev1.ConfigMap:
			m.configMap = *o
		case *appsv1.DaemonSet:
			m.daemonSet = *o
		case *corev1.Service:
			m.service = *o
		default:
			t.Fatalf("document %d: %s unexpected", i, key)
		}
	}
	for _, key := range []string{"v1/Namespace", "v1/ServiceAccount", "v1/ConfigMap", "apps/v1/DaemonSet", "v1/Service"} {
		if !seen[key] {
			t.Errorf("no %s in the manifest", key)
		}
	}
	return m
}

func readManifest(t *testing.T) manifest {
	t.Helper()
	data, err := os.ReadFile("fuseguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return decode(t, data)
}

// TestStrictDecodingRefusesUnknownFields: the decoder the other tests
// rely on fails on what a lenient one lets through.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	const head = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n"
	for name, doc := range map[string]string{
		"another case": head + "      hostPid: true\n",
		"unknown":      head + "      hostPIDs: true\n",
		"misplaced":    head + "      privileged: true\n",
		"duplicate":    head + "      hostPID: true\n      hostPID: false\n",
	} {
		t.Run(name, func(t *testing.T) { decodeOne(t, doc) })
	}
}

// decodeOne expects the strict decoding of doc to fail.
func decodeOne(t *testing.T, doc string) {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := appsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	strict := kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
	if obj, _, err := strict.Decode([]byte(doc), nil, nil); err == nil {
		t.Errorf("decoded without error: %+v", obj)
	}
}

func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no container %q", name)
	}
	return cs[i]
}

// hostPathAt returns the host path the volume mounted at mountPath in c
// comes from ("" when none or not a hostPath).
func hostPathAt(pod corev1.PodSpec, c corev1.Container, mountPath string) (string, corev1.VolumeMount) {
	for _, vm := range c.VolumeMounts {
		if vm.MountPath != mountPath {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == vm.Name && v.HostPath != nil {
				return v.HostPath.Path, vm
			}
		}
	}
	return "", corev1.VolumeMount{}
}

// configMapAt reports whether the ConfigMap name is mounted at mountPath in c.
func configMapAt(pod corev1.PodSpec, c corev1.Container, name, mountPath string) bool {
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if vm.MountPath == mountPath && v.Name == vm.Name && v.ConfigMap != nil && v.ConfigMap.Name == name {
				return true
			}
		}
	}
	return false
}

func TestDaemonSet(t *testing.T) {
	m := readManifest(t)
	ns := m.namespace.Name
	for _, o := range []metav1.ObjectMeta{m.serviceAccount.ObjectMeta, m.configMap.ObjectMeta, m.daemonSet.ObjectMeta, m.service.ObjectMeta} {
		if o.Namespace != ns {
			t.Errorf("%s is in namespace %q, want %q", o.Name, o.Namespace, ns)
		}
	}
	if m.namespace.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("namespace labels %v: the pod security level must admit a privileged hostPID pod", m.namespace.Labels)
	}
	c, err := config.Parse([]byte(m.configMap.Data["config.toml"]), "ConfigMap config.toml")
	if err != nil {
		t.Fatalf("the ConfigMap's config.toml: %v", err)
	}
	if !slices.Contains(c.Policy.DedicatedPrefixes, kubeletPods) {
		t.Errorf("dedicated_prefixes %v: the Kubernetes deployment turns the dedicated class on for %s", c.Policy.DedicatedPrefixes, kubeletPods)
	}

	ds := m.daemonSet
	pod := ds.Spec.Template.Spec
	if !pod.HostPID {
		t.Error("hostPID is off: the watcher would see only its own pod's /proc")
	}
	if pod.ServiceAccountName != m.serviceAccount.Name {
		t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, m.serviceAccount.Name)
	}
	for k, v := range ds.Spec.Selector.MatchLabels {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod template's labels %v", k, v, ds.Spec.Template.Labels)
		}
	}

	watch := container(t, pod.Containers, "watch")
	install := container(t, pod.InitContainers, "install")
	for _, ct := range []corev1.Container{watch, install} {
		if sc := ct.SecurityContext; sc == nil || sc.Privileged == nil || !*sc.Privileged {
			t.Errorf("container %s is not privileged", ct.Name)
		}
		if !configMapAt(pod, ct, m.configMap.Name, "/etc/fuseguard") {
			t.Errorf("container %s has no ConfigMap %s at /etc/fuseguard", ct.Name, m.configMap.Name)
		}
	}
	if i := slices.Index(watch.Command, "watch"); i < 0 || !slices.Contains(watch.Command[i:], "--config") ||
		watch.Command[slices.Index(watch.Command, "--config")+1] != "/etc/fuseguard/config.toml" {
		t.Errorf("watch command %q: want `fuseguard watch --config /etc/fuseguard/config.toml`", watch.Command)
	}
	// The watcher: the records the hooks write on the host, and fusectl.
	for _, want := range []struct{ host, in string }{
		{c.StateDir, c.StateDir},
		{fuseconn.DefaultFusectlDir, fuseconn.DefaultFusectlDir},
	} {
		if got, _ := hostPathAt(pod, watch, want.in); got != want.host {
			t.Errorf("watch: %s comes from host path %q, want %q", want.in, got, want.host)
		}
	}
	if _, vm := hostPathAt(pod, watch, fuseconn.DefaultFusectlDir); vm.MountPropagation == nil || *vm.MountPropagation != corev1.MountPropagationHostToContainer {
		t.Error("fusectl is not mounted HostToContainer: a fusectl mounted on the host later would not be seen")
	}
	// The install step: the binary for the runtime wrapper and hooks, the
	// node configuration they read, containerd's config directory.
	for _, dir := range []string{"/usr/local/bin", "/etc/fuseguard", "/etc/containerd"} {
		if got, _ := hostPathAt(pod, install, "/host"+dir); got != dir {
			t.Errorf("install: /host%s comes from host path %q, want %q", dir, got, dir)
		}
	}
	if want := "/bin/sh /etc/fuseguard/install.sh"; strings.Join(install.Command, " ") != want {
		t.Errorf("install command %q, want %q", install.Command, want)
	}

	// Metrics: the port the watcher listens on is the one declared,
	// annotated for scraping and served by the Service.
	_, port, err := net.SplitHostPort(c.Watch.MetricsAddr)
	if err != nil {
		t.Fatalf("metrics_addr %q: %v", c.Watch.MetricsAddr, err)
	}
	i := slices.IndexFunc(watch.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" })
	if i < 0 || strconv.Itoa(int(watch.Ports[i].ContainerPort)) != port {
		t.Errorf("watch ports %+v: want metrics on %s (metrics_addr %q)", watch.Ports, port, c.Watch.MetricsAddr)
	}
	if a := ds.Spec.Template.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != port {
		t.Errorf("pod annotations %v: want prometheus.io/scrape true and port %s", a, port)
	}
	if sp := m.service.Spec.Ports; len(sp) != 1 || strconv.Itoa(int(sp[0].Port)) != port || sp[0].TargetPort.String() != "metrics" {
		t.Errorf("service ports %+v: want %s to the metrics port", sp, port)
	}
	for k, v := range m.service.Spec.Selector {
		if ds.Spec.Template.Labels[k] != v {
			t.Errorf("service selector %s=%s matches no pod of the DaemonSet", k, v)
		}
	}
}

// TestContainerdSnippetInSync: the snippet the DaemonSet installs is the
// one deploy/containerd ships.
func TestContainerdSnippetInSync(t *testing.T) {
	m := readManifest(t)
	want, err := os.ReadFile(filepath.Join("..", "containerd", "fuseguard-default.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.configMap.Data["containerd-fuseguard.toml"]; got != string(want) {
		t.Errorf("ConfigMap containerd-fuseguard.toml differs from deploy/containerd/fuseguard-default.toml:\n%s", got)
	}
}

// TestInstallScript runs the ConfigMap's install.sh for real, with the
// built binaries, into a scratch host root: the binary, the runtime wrapper,
// the node configuration and the containerd snippet land where containerd
// and the hooks look, and the installed binary reads the configuration
// with the dedicated class on.
func TestInstallScript(t *testing.T) {
	m := readManifest(t)
	bin, rtbin := fgcmd.Binary(t), fgcmd.Runtime(t)
	confDir, host := t.TempDir(), t.TempDir()
	for _, k := range []string{"config.toml", "containerd-fuseguard.toml", "install.sh"} {
		if err := os.WriteFile(filepath.Join(confDir, k), []byte(m.configMap.Data[k]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ { // a rollout runs it again over the last install
		cmd := exec.Command("sh", filepath.Join(confDir, "install.sh"))
		cmd.Env = append(os.Environ(), "FUSEGUARD_HOST="+host, "FUSEGUARD_BINARY="+bin, "FUSEGUARD_RUNTIME_BINARY="+rtbin, "FUSEGUARD_CONFIG_DIR="+confDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("install.sh (run %d): %v\n%s", i+1, err, out)
		}
	}
	assertSameFile(t, filepath.Join(host, "usr/local/bin/fuseguard-runtime"), rtbin)
	assertSameFile(t, filepath.Join(host, "usr/local/bin/fuseguard"), bin)
	snippet, err := os.ReadFile(filepath.Join(host, "etc/containerd/conf.d/fuseguard.toml"))
	if err != nil || string(snippet) != m.configMap.Data["containerd-fuseguard.toml"] {
		t.Errorf("containerd snippet: %v\n%s", err, snippet)
	}
	out, err := exec.Command(filepath.Join(host, "usr/local/bin/fuseguard"), "config", "--json", "--config", filepath.Join(host, "etc/fuseguard/config.toml")).CombinedOutput()
	var eff config.Config
	if err != nil || json.Unmarshal(out, &eff) != nil || !slices.Equal(eff.Policy.DedicatedPrefixes, []string{kubeletPods}) {
		t.Errorf("installed fuseguard config: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(filepath.Join(host, "usr/local/bin")); len(entries) != 2 {
		t.Errorf("usr/local/bin holds %d entries, want the two binaries (no temporary left)", len(entries))
	}
}

// assertSameFile checks that got is a regular executable file (not a
// link) with want's content.
func assertSameFile(t *testing.T, got, want string) {
	t.Helper()
	fi, err := os.Lstat(got)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("%s: %v, %v; want a regular file, mode 0755", got, fi, err)
	}
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		t.Errorf("%s is not a copy of %s", got, want)
	}
}
