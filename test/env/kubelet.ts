// A test harness that plays the kubelet for the test bed, which has an API server and
// kube-controller-manager but no kubelet and no container runtime. It registers a Node (kept
// Ready by a Lease in kube-node-lease and the Ready condition's heartbeat, as the node lifecycle
// controller expects), binds Pending Pods of the watched namespaces to it, runs each Pod's single
// container as a local process (its command mapped through `commands`), writes real Pod status
// through pods/status, and serves the kubelet's log endpoint so `GET pods/<name>/log` works
// through the API server. Jobs thus run end to end through the real Job controller.
//
// What a real kubelet does that this one does not: images, volumes (the service-account token
// included: pass KUBECONFIG in `env`), probes, resource accounting (requests and limits are
// ignored, every pod is admitted), init and sidecar containers, more than one container.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  request as httpRequest,
  type IncomingMessage,
  type RequestOptions,
  type ServerResponse,
} from 'node:http';
import { createServer, request as httpsRequest, type Server } from 'node:https';
import { availableParallelism, constants, release, totalmem } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { selfSignedCertificate } from './certificate.ts';

export interface KubeletOptions {
  kubeConfig: KubeConfig;
  /**
   * Local programs for container commands: the first word of a container's `command` (or, when
   * the container has no `command`, its `image`, as the image's entrypoint) maps to an argv
   * prefix, e.g. `{ 'lc2-backup': [process.execPath, 'src/cli/main.ts'] }`; the rest of
   * `command` and all of `args` follow. A pod whose command is not here fails (StartError).
   */
  commands: Readonly<Record<string, readonly string[]>>;
  /** Namespaces whose pods this kubelet takes; all namespaces when absent. */
  namespaces?: readonly string[];
  /** Default `lc2-test-node-<random>`: one harness per node name. */
  nodeName?: string;
  /** Environment of every container, under the container's own `env` (e.g. KUBECONFIG). */
  env?: Readonly<Record<string, string>>;
  /** Variables of this process passed on (default PATH, HOME, TMPDIR, LANG). */
  inheritEnv?: readonly string[];
  /** Working directory of the processes (a container's `workingDir` is ignored); default cwd. */
  cwd?: string;
  /** Lease renewal and Ready heartbeat period; default 10 s, as the kubelet. */
  heartbeatSeconds?: number;
  /** Node capacity (= allocatable); default this machine's CPUs and memory, 110 pods. */
  capacity?: { cpu?: string; memory?: string; pods?: string };
  /** Delay before a container of a restartPolicy OnFailure/Always pod is started again; default 1 s. */
  restartDelayMs?: number;
  /** Where problems (failed API writes, watch restarts) are reported; default stderr. */
  log?: (line: string) => void;
}

export interface Kubelet {
  readonly nodeName: string;
  /**
   * Everything the pod's container wrote to stdout and stderr (interleaved as written), as this
   * harness kept it; also after the pod is gone. `previous`: the run before the last restart.
   * The same text is served through the API server: `GET pods/<name>/log` (tailLines,
   * limitBytes, follow and previous are honoured; timestamps, sinceSeconds/sinceTime are not).
   */
  logs(namespace: string, pod: string, options?: { previous?: boolean }): string;
  /** The process id of the pod's running container, if it runs now. */
  pid(namespace: string, pod: string): number | undefined;
  /**
   * Stops watching, kills every process (their pods become Failed, reason KubeletStopped) and
   * deletes the Node and its Lease. Pods left bound to the deleted node are removed by the pod
   * garbage collector of kube-controller-manager.
   */
  stop(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The API objects as they are on the wire (plain JSON; client-node's typed models would turn
// timestamps into Dates and drop fields).

interface KeyRef {
  name: string;
  key: string;
  optional?: boolean;
}
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: KeyRef;
    configMapKeyRef?: KeyRef;
    fieldRef?: { fieldPath: string };
    resourceFieldRef?: unknown;
  };
}
interface EnvFrom {
  prefix?: string;
  secretRef?: { name: string; optional?: boolean };
  configMapRef?: { name: string; optional?: boolean };
}
interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: EnvFrom[];
  terminationMessagePolicy?: string;
}
interface Pod {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    deletionTimestamp?: string;
    deletionGracePeriodSeconds?: number;
  };
  spec: {
    nodeName?: string;
    serviceAccountName?: string;
    containers: Container[];
    initContainers?: Container[];
    restartPolicy?: string;
    activeDeadlineSeconds?: number;
    terminationGracePeriodSeconds?: number;
    schedulingGates?: unknown[];
  };
  status?: { phase?: string; startTime?: string };
}

type Phase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';
type StopReason = 'Deleted' | 'DeadlineExceeded' | 'KubeletStopped';

interface Terminated {
  exitCode: number;
  signal?: number;
  reason: string;
  message?: string;
  startedAt: string;
  finishedAt: string;
  containerID?: string;
}

type ContainerState =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | { terminated: Terminated };

/** One pod this kubelet admitted: its container process, output and status. */
interface Run {
  pod: Pod;
  key: string;
  startTime: string;
  phase: Phase;
  reason?: string;
  message?: string;
  state: ContainerState;
  lastState?: Terminated;
  restartCount: number;
  conditions: Map<string, { status: string; reason?: string; since: string }>;
  child?: ChildProcess;
  killTimer?: NodeJS.Timeout;
  deadlineTimer?: NodeJS.Timeout;
  stopping?: StopReason;
  /** Aborted when the run should stop: wakes up waits between retries and restarts. */
  abort: AbortController;
  gone: boolean;
  finished: boolean;
  output: Buffer[];
  outputBytes: number;
  previousOutput?: Buffer;
  followers: Set<(chunk: Buffer | undefined) => void>;
  done: Promise<void>;
}

const HOST_IP = '127.0.0.1';
const OUTPUT_CAP = 16 * 1024 * 1024;
// kubelet's FallbackToLogsOnError: the last 80 lines, at most 2 KiB
// (MaxContainerTerminationMessageLogLines/Length in pkg/kubelet/container/runtime.go)
const TAIL_LINES = 80;
const TAIL_BYTES = 2048;
const DEADLINE_MESSAGE = 'Pod was active on the node longer than the specified deadline';

const now = (): string => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
/** A MicroTime (Lease renewTime): six fractional digits, as Go's RFC3339Micro parser requires. */
const microNow = (): string => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
const isTerminal = (phase: string | undefined): boolean => phase === 'Succeeded' || phase === 'Failed';

class KubeApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Raw JSON requests to the API server with the kubeconfig's credentials. */
class KubeApi {
  private readonly server: string;
  private readonly base: RequestOptions;

  private constructor(server: string, base: RequestOptions) {
    this.server = server;
    this.base = base;
  }

  static async connect(kubeConfig: KubeConfig): Promise<KubeApi> {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('test kubelet: the kubeconfig has no current cluster');
    const base: RequestOptions = {};
    await kubeConfig.applyToHTTPSOptions(base);
    return new KubeApi(cluster.server, base);
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ status: number; body: string }> {
    const url = new URL(this.server + path);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
    const headers: Record<string, string> = {
      ...(this.base.headers as Record<string, string>),
      accept: 'application/json',
    };
    // explicit length: Node does not chunk a DELETE's body, and without it the body is lost
    if (payload !== undefined)
      Object.assign(headers, {
        'content-type': contentType,
        'content-length': String(Buffer.byteLength(payload)),
      });
    return new Promise((resolve, reject) => {
      const req = send(url, { ...this.base, method, headers, timeout: 10_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.end(payload);
    });
  }

  async json<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.call(method, path, body, contentType);
    if (res.status >= 300) {
      let message = res.body;
      try {
        message = (JSON.parse(res.body) as { message?: string }).message ?? res.body;
      } catch {
        // not a Status object
      }
      throw new KubeApiError(res.status, `${method} ${path}: ${res.status} ${message}`);
    }
    return JSON.parse(res.body) as T;
  }
}

// ---------------------------------------------------------------------------------------------
// Container environment: plain values, Secret and ConfigMap keys, pod fields, $(VAR) expansion.

/** A missing Secret, ConfigMap or key: the container waits (CreateContainerConfigError) and retries. */
class ConfigError extends Error {}
/** Something this kubelet cannot do: the container fails to start (StartError). */
class UnsupportedError extends Error {}

/** Kubernetes' $(VAR) expansion: `$$` is a literal `$`, unknown references stay as written. */
function expand(input: string, vars: Record<string, string>): string {
  return input.replace(/\$\$|\$\(([-._a-zA-Z0-9]+)\)/g, (match, name: string | undefined) =>
    match === '$$' ? '$' : (vars[name ?? ''] ?? match),
  );
}

function fieldValue(pod: Pod, path: string): string {
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (keyed)
    return (keyed[1] === 'labels' ? pod.metadata.labels : pod.metadata.annotations)?.[keyed[2] ?? ''] ?? '';
  const fields: Record<string, string | undefined> = {
    'metadata.name': pod.metadata.name,
    'metadata.namespace': pod.metadata.namespace,
    'metadata.uid': pod.metadata.uid,
    'spec.nodeName': pod.spec.nodeName,
    'spec.serviceAccountName': pod.spec.serviceAccountName,
    'status.hostIP': HOST_IP,
    'status.hostIPs': HOST_IP,
    'status.podIP': HOST_IP,
    'status.podIPs': HOST_IP,
  };
  const value = fields[path];
  if (value === undefined)
    throw new UnsupportedError(`env fieldRef ${path} is not supported by the test kubelet`);
  return value;
}

type Source = { kind: 'Secret' | 'ConfigMap'; data: Record<string, string> } | undefined;

// ---------------------------------------------------------------------------------------------

class LocalKubelet implements Kubelet {
  readonly nodeName: string;
  private readonly options: KubeletOptions;
  private readonly api: KubeApi;
  private readonly runs = new Map<string, Run>();
  private readonly binding = new Set<string>();
  private readonly informers: Informer<KubernetesObject>[] = [];
  private readonly readySince = now();
  private heartbeatTimer?: NodeJS.Timeout;
  private logServer?: Server;
  private nodeUid = '';
  private stopped = false;
  /** The processes run in their own process groups: should the test process die, they go too. */
  private readonly killAllOnExit = (): void => {
    for (const run of this.runs.values()) if (run.child) killGroup(run.child, 'SIGKILL');
  };

  constructor(options: KubeletOptions, api: KubeApi) {
    this.options = options;
    this.api = api;
    this.nodeName = options.nodeName ?? `lc2-test-node-${randomBytes(3).toString('hex')}`;
  }

  /** A method, not the field: TypeScript would keep its narrowing across awaits. */
  private isStopped(): boolean {
    return this.stopped;
  }

  private log(line: string): void {
    (this.options.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(
      `test kubelet ${this.nodeName}: ${line}`,
    );
  }

  // -- start and stop --------------------------------------------------------------------------

  async start(): Promise<void> {
    process.on('exit', this.killAllOnExit);
    const port = await this.serveLogs();
    await this.register(port);
    const every = (this.options.heartbeatSeconds ?? 10) * 1000;
    this.heartbeatTimer = setInterval(() => void this.heartbeat(port), every);
    this.heartbeatTimer.unref();
    const paths = this.options.namespaces?.map(
      (ns) => `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`,
    ) ?? ['/api/v1/pods'];
    await Promise.all(paths.map((path) => this.watch(path)));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    await Promise.all(this.informers.map((i) => i.stop()));
    for (const run of this.runs.values()) this.requestStop(run, 'KubeletStopped', 0);
    await Promise.all([...this.runs.values()].map((r) => r.done));
    await new Promise<void>((resolve) => {
      if (this.logServer)
        this.logServer.close(() => {
          resolve();
        });
      else resolve();
    });
    this.logServer?.closeAllConnections();
    const lease = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${this.nodeName}`;
    await this.api.call('DELETE', lease).catch(() => undefined);
    await this.api.call('DELETE', `/api/v1/nodes/${this.nodeName}`).catch(() => undefined);
    process.off('exit', this.killAllOnExit);
  }

  // -- the Node and its heartbeat --------------------------------------------------------------

  private nodeConditions(): Record<string, string>[] {
    const heartbeat = now();
    const condition = (type: string, status: string, reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: heartbeat,
      lastTransitionTime: this.readySince,
    });
    return [
      condition(
        'MemoryPressure',
        'False',
        'KubeletHasSufficientMemory',
        'kubelet has sufficient memory available',
      ),
      condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
      condition('PIDPressure', 'False', 'KubeletHasSufficientPID', 'kubelet has sufficient PID available'),
      condition('Ready', 'True', 'KubeletReady', 'kubelet is posting ready status (lc2 test kubelet)'),
    ];
  }

  private nodeObject(port: number): Record<string, unknown> {
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    const capacity = {
      cpu: this.options.capacity?.cpu ?? String(availableParallelism()),
      memory: this.options.capacity?.memory ?? `${Math.floor(totalmem() / 1024)}Ki`,
      pods: this.options.capacity?.pods ?? '110',
    };
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.nodeName,
        labels: {
          'kubernetes.io/hostname': this.nodeName,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': arch,
          'lc2.test/kubelet': 'local-process',
        },
      },
      spec: {},
      status: {
        capacity,
        allocatable: capacity,
        conditions: this.nodeConditions(),
        // only an InternalIP: the API server reaches the log endpoint at 127.0.0.1:<port>
        addresses: [{ type: 'InternalIP', address: HOST_IP }],
        daemonEndpoints: { kubeletEndpoint: { Port: port } },
        nodeInfo: {
          machineID: '',
          systemUUID: '',
          bootID: '',
          kernelVersion: release(),
          osImage: 'lc2 test kubelet (containers run as local processes)',
          containerRuntimeVersion: 'local-process://0.0.0',
          kubeletVersion: 'v0.0.0-lc2-test',
          kubeProxyVersion: '',
          operatingSystem: 'linux',
          architecture: arch,
        },
      },
    };
  }

  /** Creates the Node (or takes over an existing one of that name) and its Lease. */
  private async register(port: number): Promise<void> {
    const node = this.nodeObject(port);
    const created = await this.api.call('POST', '/api/v1/nodes', node);
    if (created.status === 409) {
      await this.api.json(
        'PATCH',
        `/api/v1/nodes/${this.nodeName}/status`,
        { status: node.status },
        'application/merge-patch+json',
      );
    } else if (created.status >= 300) {
      throw new Error(`test kubelet: registering node ${this.nodeName}: ${created.status} ${created.body}`);
    }
    const got = await this.api.json<{ metadata: { uid: string } }>('GET', `/api/v1/nodes/${this.nodeName}`);
    this.nodeUid = got.metadata.uid;
    await this.renewLease();
  }

  private async renewLease(): Promise<void> {
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases`;
    const spec = { holderIdentity: this.nodeName, leaseDurationSeconds: 40, renewTime: microNow() };
    const renewed = await this.api.call(
      'PATCH',
      `${path}/${this.nodeName}`,
      { spec },
      'application/merge-patch+json',
    );
    if (renewed.status !== 404) {
      if (renewed.status >= 300) throw new Error(`renewing the lease: ${renewed.status} ${renewed.body}`);
      return;
    }
    // owned by the Node, as the kubelet's: deleting the Node deletes it
    const owner = { apiVersion: 'v1', kind: 'Node', name: this.nodeName, uid: this.nodeUid };
    await this.api.json('POST', path, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.nodeName, namespace: 'kube-node-lease', ownerReferences: [owner] },
      spec,
    });
  }

  /**
   * The node lifecycle controller marks a node Unknown (and taints it unreachable, NoExecute)
   * when neither its Lease is renewed nor its Ready condition's heartbeat changes within
   * --node-monitor-grace-period (50 s); both are renewed here.
   */
  private async heartbeat(port: number): Promise<void> {
    if (this.stopped) return;
    try {
      const path = `/api/v1/nodes/${this.nodeName}/status`;
      const patch = { status: { conditions: this.nodeConditions() } };
      const res = await this.api.call('PATCH', path, patch, 'application/strategic-merge-patch+json');
      if (res.status === 404) await this.register(port);
      else if (res.status >= 300) throw new Error(`node status: ${res.status} ${res.body}`);
      await this.renewLease();
    } catch (err) {
      if (!this.isStopped()) this.log(`heartbeat failed: ${String(err)}`);
    }
  }

  // -- watching pods ---------------------------------------------------------------------------

  private async watch(path: string): Promise<void> {
    const list = () => this.api.json<KubernetesListObject<KubernetesObject>>('GET', path);
    const informer = makeInformer<KubernetesObject>(this.options.kubeConfig, path, list);
    const onPod = (obj: KubernetesObject): void => {
      this.onPod(obj as unknown as Pod);
    };
    informer.on('add', onPod);
    informer.on('update', onPod);
    informer.on('delete', (obj) => {
      this.onPodGone(obj as unknown as Pod);
    });
    informer.on('error', (err: unknown) => {
      if (this.stopped) return;
      this.log(`watch of ${path} failed; restarting it: ${String(err)}`);
      setTimeout(() => {
        if (!this.stopped) void informer.start().catch(() => undefined);
      }, 1000).unref();
    });
    this.informers.push(informer);
    await informer.start();
  }

  private onPod(pod: Pod): void {
    if (this.stopped) return;
    const run = this.runs.get(pod.metadata.uid);
    if (run) run.pod = pod;
    const nodeName = pod.spec.nodeName ?? '';
    if (nodeName === '') {
      if (this.shouldBind(pod)) void this.bind(pod);
      return;
    }
    if (nodeName !== this.nodeName) return;
    if (pod.metadata.deletionTimestamp !== undefined) {
      const grace = pod.metadata.deletionGracePeriodSeconds ?? 0;
      if (run && !run.finished) this.requestStop(run, 'Deleted', grace);
      else if (grace > 0) void this.finishDeletion(pod);
      return;
    }
    if (!run && !isTerminal(pod.status?.phase)) this.admit(pod);
  }

  private onPodGone(pod: Pod): void {
    const run = this.runs.get(pod.metadata.uid);
    if (!run || run.finished) return;
    run.gone = true;
    this.requestStop(run, 'Deleted', 0);
  }

  private shouldBind(pod: Pod): boolean {
    return (
      (pod.status?.phase ?? 'Pending') === 'Pending' &&
      pod.metadata.deletionTimestamp === undefined &&
      (pod.spec.schedulingGates ?? []).length === 0 &&
      !this.binding.has(pod.metadata.uid)
    );
  }

  /** What the scheduler does: POST pods/<name>/binding (the pod's uid is the precondition). */
  private async bind(pod: Pod): Promise<void> {
    const { name, namespace, uid } = pod.metadata;
    this.binding.add(uid);
    const binding = {
      apiVersion: 'v1',
      kind: 'Binding',
      metadata: { name, namespace, uid },
      target: { apiVersion: 'v1', kind: 'Node', name: this.nodeName },
    };
    for (let attempt = 1; !this.stopped; attempt++) {
      try {
        const res = await this.api.call(
          'POST',
          `/api/v1/namespaces/${namespace}/pods/${name}/binding`,
          binding,
        );
        // 404/409: gone, or bound meanwhile; the API server answers 500 "already assigned"
        if (
          res.status < 300 ||
          [404, 409].includes(res.status) ||
          /already assigned|being deleted/.test(res.body)
        )
          return;
        throw new Error(`${res.status} ${res.body}`);
      } catch (err) {
        if (attempt >= 5) {
          this.log(`binding pod ${namespace}/${name} failed: ${String(err)}`);
          this.binding.delete(uid);
          return;
        }
        await sleep(200 * attempt);
      }
    }
  }

  // -- running a pod ---------------------------------------------------------------------------

  private admit(pod: Pod): void {
    const run: Run = {
      pod,
      key: `${pod.metadata.namespace}/${pod.metadata.name}`,
      startTime: pod.status?.startTime ?? now(),
      phase: 'Pending',
      state: { waiting: { reason: 'ContainerCreating' } },
      restartCount: 0,
      conditions: new Map(),
      abort: new AbortController(),
      gone: false,
      finished: false,
      output: [],
      outputBytes: 0,
      followers: new Set(),
      done: Promise.resolve(),
    };
    this.runs.set(pod.metadata.uid, run);
    run.done = this.lifecycle(run).catch((err: unknown) => {
      this.log(`pod ${run.key}: ${String(err)}`);
    });
  }

  private async lifecycle(run: Run): Promise<void> {
    try {
      const problem = this.unsupported(run.pod);
      if (problem !== undefined) {
        this.failToStart(run, problem);
      } else {
        await this.writeStatus(run);
        this.armDeadline(run);
        await this.runContainer(run);
      }
      this.settle(run);
      await this.writeStatus(run);
      if (!run.gone && (run.pod.metadata.deletionTimestamp !== undefined || run.stopping === 'Deleted'))
        await this.finishDeletion(run.pod);
    } finally {
      clearTimeout(run.deadlineTimer);
      clearTimeout(run.killTimer);
      run.finished = true;
      for (const follower of run.followers) follower(undefined);
      run.followers.clear();
    }
  }

  private unsupported(pod: Pod): string | undefined {
    if (pod.status?.startTime !== undefined)
      return 'the pod was started by a kubelet process that is gone; its container cannot be resumed';
    if (pod.spec.containers.length !== 1 || (pod.spec.initContainers ?? []).length > 0)
      return `the test kubelet runs pods of exactly one container and no init containers; this pod has ${pod.spec.containers.length} containers and ${(pod.spec.initContainers ?? []).length} init containers`;
    return undefined;
  }

  private armDeadline(run: Run): void {
    const seconds = run.pod.spec.activeDeadlineSeconds;
    if (seconds === undefined) return;
    const remaining = Date.parse(run.startTime) + seconds * 1000 - Date.now();
    const grace = run.pod.spec.terminationGracePeriodSeconds ?? 30;
    run.deadlineTimer = setTimeout(
      () => {
        this.requestStop(run, 'DeadlineExceeded', grace);
      },
      Math.max(0, remaining),
    );
  }

  /** Starts the container (again, per restartPolicy) until it ends for good or the pod stops. */
  private async runContainer(run: Run): Promise<void> {
    for (;;) {
      const prepared = await this.prepare(run);
      if (prepared === undefined) return;
      const ended = await this.execute(run, prepared);
      run.state = { terminated: ended };
      const policy = run.pod.spec.restartPolicy ?? 'Always';
      const again = policy === 'Always' || (policy === 'OnFailure' && ended.exitCode !== 0);
      if (run.stopping !== undefined || !again) return;
      run.lastState = ended;
      run.state = { waiting: { reason: 'CrashLoopBackOff', message: 'back-off restarting the container' } };
      await this.writeStatus(run);
      try {
        await sleep(this.options.restartDelayMs ?? 1000, undefined, { signal: run.abort.signal });
      } catch {
        run.state = { terminated: ended };
        return;
      }
      run.restartCount++;
      run.previousOutput = Buffer.concat(run.output);
      run.output = [];
      run.outputBytes = 0;
    }
  }

  /** The argv and environment, waiting while a referenced Secret or ConfigMap is missing. */
  private async prepare(run: Run): Promise<{ argv: string[]; env: Record<string, string> } | undefined> {
    for (;;) {
      if (run.stopping !== undefined) return undefined;
      try {
        const env = await this.environment(run.pod);
        return { argv: this.argv(run.pod, env), env };
      } catch (err) {
        if (!(err instanceof ConfigError)) {
          this.failToStart(run, err instanceof Error ? err.message : String(err));
          return undefined;
        }
        run.state = { waiting: { reason: 'CreateContainerConfigError', message: err.message } };
        await this.writeStatus(run);
        await sleep(2000, undefined, { signal: run.abort.signal }).catch(() => undefined);
      }
    }
  }

  private argv(pod: Pod, env: Record<string, string>): string[] {
    const container = pod.spec.containers[0] as Container;
    const command = (container.command ?? []).map((word) => expand(word, env));
    const args = (container.args ?? []).map((word) => expand(word, env));
    const key = command[0] ?? container.image ?? '';
    const program = this.options.commands[key];
    if (program === undefined || program.length === 0) {
      const what = command.length > 0 ? `command "${key}"` : `image "${key}" (the container has no command)`;
      throw new UnsupportedError(
        `the test kubelet has no local program for ${what}; known: ${Object.keys(this.options.commands).join(', ') || '(none)'} (startKubelet's commands option)`,
      );
    }
    return [...program, ...command.slice(1), ...args];
  }

  private async environment(pod: Pod): Promise<Record<string, string>> {
    const container = pod.spec.containers[0] as Container;
    const inherited = (this.options.inheritEnv ?? ['PATH', 'HOME', 'TMPDIR', 'LANG']).flatMap((name) => {
      const value = process.env[name];
      return value === undefined ? [] : [[name, value] as const];
    });
    const env: Record<string, string> = {
      ...Object.fromEntries(inherited),
      ...this.options.env,
      HOSTNAME: pod.metadata.name,
    };
    const sources = new Map<string, Source>();
    for (const from of container.envFrom ?? []) {
      const ref = from.secretRef ?? from.configMapRef;
      if (!ref) continue;
      const source = await this.source(pod, from.secretRef ? 'Secret' : 'ConfigMap', ref, sources);
      for (const [key, value] of Object.entries(source?.data ?? {}))
        env[`${from.prefix ?? ''}${key}`] = value;
    }
    for (const variable of container.env ?? []) {
      const value = await this.envValue(pod, variable, env, sources);
      if (value !== undefined) env[variable.name] = value;
    }
    return env;
  }

  private async envValue(
    pod: Pod,
    variable: EnvVar,
    env: Record<string, string>,
    sources: Map<string, Source>,
  ): Promise<string | undefined> {
    const from = variable.valueFrom;
    if (!from) return expand(variable.value ?? '', env);
    if (from.fieldRef) return fieldValue(pod, from.fieldRef.fieldPath);
    const ref = from.secretKeyRef ?? from.configMapKeyRef;
    if (!ref)
      throw new UnsupportedError(
        `env ${variable.name}: only value, secretKeyRef, configMapKeyRef and fieldRef are supported`,
      );
    const kind = from.secretKeyRef ? 'Secret' : 'ConfigMap';
    const source = await this.source(pod, kind, ref, sources);
    const value = source?.data[ref.key];
    if (value === undefined && source && ref.optional !== true)
      throw new ConfigError(`couldn't find key ${ref.key} in ${kind} ${pod.metadata.namespace}/${ref.name}`);
    return value;
  }

  /** A Secret's or ConfigMap's data (decoded); undefined when it is missing and optional. */
  private async source(
    pod: Pod,
    kind: 'Secret' | 'ConfigMap',
    ref: { name: string; optional?: boolean },
    cache: Map<string, Source>,
  ): Promise<Source> {
    const id = `${kind}/${ref.name}`;
    if (cache.has(id)) return cache.get(id);
    const plural = kind === 'Secret' ? 'secrets' : 'configmaps';
    const res = await this.api.call(
      'GET',
      `/api/v1/namespaces/${pod.metadata.namespace}/${plural}/${ref.name}`,
    );
    if (res.status === 404) {
      if (ref.optional === true) return undefined;
      throw new ConfigError(`${kind.toLowerCase()} "${ref.name}" not found`);
    }
    if (res.status >= 300) throw new ConfigError(`reading ${kind} ${ref.name}: ${res.status} ${res.body}`);
    const object = JSON.parse(res.body) as {
      data?: Record<string, string>;
      binaryData?: Record<string, string>;
    };
    const decode = (v: string) => Buffer.from(v, 'base64').toString();
    const data =
      kind === 'Secret'
        ? Object.fromEntries(Object.entries(object.data ?? {}).map(([k, v]) => [k, decode(v)]))
        : {
            ...object.data,
            ...Object.fromEntries(Object.entries(object.binaryData ?? {}).map(([k, v]) => [k, decode(v)])),
          };
    const source: Source = { kind, data };
    cache.set(id, source);
    return source;
  }

  /** Runs the process once; resolves with its terminated state. */
  private async execute(
    run: Run,
    prepared: { argv: string[]; env: Record<string, string> },
  ): Promise<Terminated> {
    const [program = '', ...args] = prepared.argv;
    const startedAt = now();
    const containerID = `local-process://${run.pod.metadata.uid}-${run.restartCount}`;
    const child = spawn(program, args, {
      cwd: this.options.cwd ?? process.cwd(),
      env: prepared.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const record = (chunk: Buffer): void => {
      this.keepOutput(run, chunk);
    };
    child.stdout.on('data', record);
    child.stderr.on('data', record);
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
      (resolve) => {
        child.on('error', (error) => {
          resolve({ code: null, signal: null, error });
        });
        child.on('exit', () => {
          // like a container's PID namespace: what the main process left behind goes with it
          killGroup(child, 'SIGKILL');
        });
        child.on('close', (code, signal) => {
          resolve({ code, signal });
        });
      },
    );
    if (child.pid !== undefined) {
      run.child = child;
      run.phase = 'Running';
      run.state = { running: { startedAt } };
      if (run.stopping !== undefined) killGroup(child, 'SIGKILL');
      else await this.writeStatus(run);
    }
    const { code, signal, error } = await ended;
    run.child = undefined;
    clearTimeout(run.killTimer);
    const finishedAt = now();
    if (error) return { exitCode: 128, reason: 'StartError', message: error.message, startedAt, finishedAt };
    const signalNumber = signal ? constants.signals[signal] : undefined;
    const exitCode = code ?? 128 + (signalNumber ?? 0);
    const message = this.terminationMessage(run, exitCode);
    return {
      exitCode,
      ...(signalNumber === undefined ? {} : { signal: signalNumber }),
      reason: exitCode === 0 ? 'Completed' : 'Error',
      ...(message === undefined ? {} : { message }),
      startedAt,
      finishedAt,
      containerID,
    };
  }

  private keepOutput(run: Run, chunk: Buffer): void {
    run.output.push(chunk);
    run.outputBytes += chunk.length;
    while (run.outputBytes > OUTPUT_CAP && run.output.length > 1)
      run.outputBytes -= run.output.shift()?.length ?? 0;
    for (const follower of run.followers) follower(chunk);
  }

  /** terminationMessagePolicy FallbackToLogsOnError: the log's tail when the container failed. */
  private terminationMessage(run: Run, exitCode: number): string | undefined {
    const container = run.pod.spec.containers[0];
    if (container?.terminationMessagePolicy !== 'FallbackToLogsOnError' || exitCode === 0) return undefined;
    const tail = selectLog(Buffer.concat(run.output), TAIL_LINES, TAIL_BYTES, true);
    return tail.length === 0 ? undefined : tail.toString();
  }

  private failToStart(run: Run, message: string): void {
    const at = now();
    run.state = {
      terminated: { exitCode: 128, reason: 'StartError', message, startedAt: at, finishedAt: at },
    };
  }

  /** The pod's terminal phase, as the kubelet computes it. */
  private settle(run: Run): void {
    const ended = 'terminated' in run.state ? run.state.terminated : undefined;
    run.phase = ended?.exitCode === 0 ? 'Succeeded' : 'Failed';
    if (run.stopping === 'DeadlineExceeded') {
      run.phase = 'Failed';
      run.reason = 'DeadlineExceeded';
      run.message = DEADLINE_MESSAGE;
    } else if (run.stopping === 'KubeletStopped') {
      run.phase = 'Failed';
      run.reason = 'KubeletStopped';
      run.message = 'the test kubelet stopped and killed the container';
    }
    if (!ended) {
      const at = now();
      run.state = {
        terminated: { exitCode: 137, reason: 'ContainerStatusUnknown', startedAt: at, finishedAt: at },
      };
    }
  }

  /**
   * Kills the container: TERM, then KILL after the grace period (at once for 0). The first
   * reason is kept (a deadline-killed pod that is then deleted stays DeadlineExceeded).
   */
  private requestStop(run: Run, reason: StopReason, graceSeconds: number): void {
    if (run.finished) return;
    run.stopping ??= reason;
    run.abort.abort();
    const child = run.child;
    if (!child) return;
    if (graceSeconds <= 0) {
      killGroup(child, 'SIGKILL');
      return;
    }
    if (run.killTimer !== undefined) return;
    killGroup(child, 'SIGTERM');
    run.killTimer = setTimeout(() => {
      killGroup(child, 'SIGKILL');
    }, graceSeconds * 1000);
  }

  /** The kubelet's last word on a deleted pod: DELETE with grace period 0 (finalizers still apply). */
  private async finishDeletion(pod: Pod): Promise<void> {
    const { namespace, name, uid } = pod.metadata;
    const options = {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: 0,
      preconditions: { uid },
    };
    const res = await this.api.call('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`, options);
    if (res.status >= 300 && res.status !== 404 && res.status !== 409)
      this.log(`deleting pod ${namespace}/${name}: ${res.status} ${res.body}`);
  }

  // -- pod status ------------------------------------------------------------------------------

  private condition(run: Run, type: string, status: string, reason?: string): Record<string, unknown> {
    const previous = run.conditions.get(type);
    const current =
      previous?.status === status && previous.reason === reason ? previous : { status, reason, since: now() };
    run.conditions.set(type, current);
    return {
      type,
      status,
      ...(reason === undefined ? {} : { reason }),
      lastProbeTime: null,
      lastTransitionTime: current.since,
    };
  }

  private podConditions(run: Run): Record<string, unknown>[] {
    const terminal = isTerminal(run.phase);
    const ready = run.phase === 'Running' && 'running' in run.state;
    const notReady = terminal ? 'PodCompleted' : 'ContainersNotReady';
    return [
      this.condition(run, 'PodReadyToStartContainers', terminal ? 'False' : 'True'),
      this.condition(run, 'Initialized', 'True'),
      this.condition(run, 'ContainersReady', ready ? 'True' : 'False', ready ? undefined : notReady),
      this.condition(run, 'Ready', ready ? 'True' : 'False', ready ? undefined : notReady),
    ];
  }

  private containerStatus(run: Run): Record<string, unknown> {
    const container = run.pod.spec.containers[0] as Container;
    const running = 'running' in run.state;
    const containerID =
      'terminated' in run.state
        ? run.state.terminated.containerID
        : running
          ? `local-process://${run.pod.metadata.uid}-${run.restartCount}`
          : undefined;
    return {
      name: container.name,
      image: container.image ?? '',
      imageID: '',
      ...(containerID === undefined ? {} : { containerID }),
      ready: running,
      started: running,
      restartCount: run.restartCount,
      state: run.state,
      lastState: run.lastState ? { terminated: run.lastState } : {},
    };
  }

  /** A strategic merge patch of pods/status (conditions merge by type, as the kubelet's do). */
  private async writeStatus(run: Run): Promise<void> {
    if (run.gone) return;
    const { namespace, name, uid } = run.pod.metadata;
    const status = {
      phase: run.phase,
      ...(run.reason === undefined ? {} : { reason: run.reason, message: run.message }),
      hostIP: HOST_IP,
      hostIPs: [{ ip: HOST_IP }],
      podIP: HOST_IP,
      podIPs: [{ ip: HOST_IP }],
      startTime: run.startTime,
      conditions: this.podConditions(run),
      containerStatuses: [this.containerStatus(run)],
    };
    const path = `/api/v1/namespaces/${namespace}/pods/${name}/status`;
    for (let attempt = 1; ; attempt++) {
      const res = await this.api
        .call('PATCH', path, { metadata: { uid }, status }, 'application/strategic-merge-patch+json')
        .catch((err: unknown) => ({ status: 0, body: String(err) }));
      if (res.status < 300) return;
      // gone, or another pod of that name now (uid precondition)
      if (res.status === 404 || res.status === 409) {
        run.gone = true;
        return;
      }
      if (attempt >= 5 || this.stopped) {
        this.log(`writing the status of pod ${run.key} failed: ${res.status} ${res.body}`);
        return;
      }
      await sleep(200 * attempt);
    }
  }

  // -- logs ------------------------------------------------------------------------------------

  private latestRun(namespace: string, pod: string): Run | undefined {
    let found: Run | undefined;
    for (const run of this.runs.values()) if (run.key === `${namespace}/${pod}`) found = run;
    return found;
  }

  logs(namespace: string, pod: string, options: { previous?: boolean } = {}): string {
    const run = this.latestRun(namespace, pod);
    if (!run) throw new Error(`test kubelet ${this.nodeName}: pod ${namespace}/${pod} did not run here`);
    return (
      options.previous === true ? (run.previousOutput ?? Buffer.alloc(0)) : Buffer.concat(run.output)
    ).toString();
  }

  pid(namespace: string, pod: string): number | undefined {
    return this.latestRun(namespace, pod)?.child?.pid;
  }

  /** The kubelet's /containerLogs/<namespace>/<pod>/<container>, which the API server proxies to. */
  private async serveLogs(): Promise<number> {
    const server = createServer(selfSignedCertificate(this.nodeName), (req, res) => {
      this.serveLog(req, res);
    });
    this.logServer = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, HOST_IP, resolve);
    });
    const address = server.address();
    if (address === null || typeof address === 'string')
      throw new Error('test kubelet: log server has no port');
    return address.port;
  }

  private logRun(url: URL): Run | undefined {
    const match = /^\/containerLogs\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    const [namespace = '', pod = '', container] = (match?.slice(1) ?? []).map(decodeURIComponent);
    const run = this.latestRun(namespace, pod);
    return run?.pod.spec.containers[0]?.name === container ? run : undefined;
  }

  private serveLog(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const run = this.logRun(url);
    if (!run) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`the test kubelet has no logs for ${url.pathname}\n`);
      return;
    }
    const query = url.searchParams;
    const previous = query.get('previous') === 'true';
    const tailLines = query.has('tailLines') ? Number(query.get('tailLines')) : undefined;
    const limitBytes = query.has('limitBytes') ? Number(query.get('limitBytes')) : undefined;
    const text = previous ? (run.previousOutput ?? Buffer.alloc(0)) : Buffer.concat(run.output);
    const selected = selectLog(text, tailLines, limitBytes, false);
    res.writeHead(200, { 'content-type': 'text/plain' });
    const follow = query.get('follow') === 'true' && !previous && !run.finished && limitBytes === undefined;
    if (!follow) {
      res.end(selected);
      return;
    }
    res.write(selected);
    const follower = (chunk: Buffer | undefined): void => {
      if (chunk === undefined) res.end();
      else res.write(chunk);
    };
    run.followers.add(follower);
    res.on('close', () => {
      run.followers.delete(follower);
    });
  }
}

/** The last `lines` lines, then at most `bytes` bytes: of the end (`fromEnd`) or of the start. */
function selectLog(
  text: Buffer,
  lines: number | undefined,
  bytes: number | undefined,
  fromEnd: boolean,
): Buffer {
  let selected = text;
  if (lines !== undefined && lines >= 0) {
    // a trailing newline ends the last line; it does not start another
    const end = text.length > 0 && text[text.length - 1] === 0x0a ? text.length - 1 : text.length;
    let start = lines === 0 ? text.length : 0;
    for (let i = end - 1, seen = 0; i >= 0 && lines > 0; i--) {
      if (text[i] === 0x0a && ++seen === lines) {
        start = i + 1;
        break;
      }
    }
    selected = text.subarray(start);
  }
  if (bytes !== undefined && bytes >= 0 && selected.length > bytes)
    selected = fromEnd ? selected.subarray(selected.length - bytes) : selected.subarray(0, bytes);
  return selected;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    // detached: the child leads its own process group, so its children die with it
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Starts the harness: serves the log endpoint, registers the Node and its Lease, and takes the
 * pods of the watched namespaces (those created before it started included) before returning.
 */
export async function startKubelet(options: KubeletOptions): Promise<Kubelet> {
  const kubelet = new LocalKubelet(options, await KubeApi.connect(options.kubeConfig));
  try {
    await kubelet.start();
  } catch (err) {
    await kubelet.stop();
    throw err;
  }
  return kubelet;
}
