/**
 * Simulated Kasa plugs on loopback (tplink-smarthome-simulator), for `kasa-monitor demo`, tests and
 * benchmarks. The only importer of tplink-smarthome-simulator.
 *
 * Each device binds its own 127.x address on the fleet's port (UDP and TCP). Broadcasts are received
 * by one socket bound to 127.255.255.255:port and handed to the simulator's UdpServer singleton, which
 * every started device listens to; each device then answers from its own address. Binding the
 * broadcast address (instead of the simulator's 0.0.0.0) keeps the fleet deaf to anything but
 * loopback, so it never answers a packet from the LAN.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { Device, UdpServer } from 'tplink-smarthome-simulator';

export type SimModel = 'hs100' | 'hs105' | 'hs110' | 'hs110v2' | 'hs200' | 'hs220' | 'hs300';

/** Old firmware units (HS110 v1): W, V, A, kWh as floats. */
export interface LegacyRealtime {
  readonly power: number;
  readonly voltage: number;
  readonly current: number;
  readonly total: number;
}

/** New firmware units (HS110 v2, HS300): mW, mV, mA, Wh integers. */
export interface ModernRealtime {
  readonly power_mw: number;
  readonly voltage_mv: number;
  readonly current_ma: number;
  readonly total_wh: number;
}

export type SimRealtime = LegacyRealtime | ModernRealtime;

export interface SimDeviceSpec {
  readonly model: SimModel;
  /** A loopback address, 127.x.y.z. */
  readonly address: string;
  /** Defaults to a random 40-hex-digit id, as the simulator makes. */
  readonly deviceId?: string;
  readonly alias?: string;
  /** Milliseconds before every answer. */
  readonly responseDelay?: number;
  /** Fraction (0..1, despite the simulator's name) of answers replaced by random bytes. */
  readonly unreliablePercent?: number;
  /** Initial meter values (for a strip: every outlet). */
  readonly realtime?: SimRealtime;
  /** Outlet aliases for a strip (HS300), in outlet order. */
  readonly outletAliases?: readonly string[];
}

export interface SimulatedDevice {
  readonly deviceId: string;
  readonly model: SimModel;
  readonly alias: string;
  readonly address: string;
  readonly port: number;
  /** Full child ids of a strip's outlets (deviceId + 2 digits); empty for a single plug. */
  readonly childIds: readonly string[];
}

/** A request a simulated device received (for tests that count requests). */
export interface SimRequest {
  readonly deviceId: string;
  /** When the device received it (UTC ms). */
  readonly timeMs: number;
  readonly protocol: 'udp' | 'tcp';
  readonly message: string;
}

export interface SimulatorFleetOptions {
  /** UDP/TCP port of every device and of the broadcast receiver (9999 for real plugs). */
  readonly port: number;
  readonly devices: readonly SimDeviceSpec[];
}

export interface SimulatorFleet {
  readonly port: number;
  readonly devices: readonly SimulatedDevice[];
  /** Sets the meter of a plug (by deviceId) or of one strip outlet (by full child id). */
  setRealtime(id: string, values: SimRealtime): void;
  /** Moves a device to another loopback address (same deviceId), as DHCP would. */
  move(deviceId: string, address: string): Promise<void>;
  /** Takes a device off the network (no answers) / back on. */
  pause(deviceId: string): Promise<void>;
  resume(deviceId: string): Promise<void>;
  /** Sets the answer delay and the garbage fraction of a running device. */
  setBehaviour(deviceId: string, behaviour: { responseDelay?: number; unreliablePercent?: number }): void;
  /**
   * Makes every meter wander (power drifts by a few percent, current follows, the energy counter
   * grows with the power drawn) every `intervalMs` (default 1 s), for the demo. Returns a stop function.
   */
  animate(intervalMs?: number): () => void;
  /** Called for every request a device receives; returns the unsubscribe function. */
  onRequest(listener: (request: SimRequest) => void): () => void;
  /**
   * Seeds a plug's (or an outlet's) day statistics, in the units its firmware uses (hs110: kWh in
   * `energy`; newer: Wh in `energy_wh`). Unseeded days the simulator answers with random values.
   */
  setDayStats(id: string, days: readonly SimDayStat[]): void;
  /** Sets the plug's clock (`time.get_time`) to UTC plus `offsetMs`: a plug in another time zone. */
  setClockOffset(deviceId: string, offsetMs: number): void;
  stop(): Promise<void>;
}

export interface SimDayStat {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly energyWh: number;
}

interface RealtimeStore {
  current: number;
  voltage: number;
  power: number;
  total: number;
}

interface DayStatStore {
  day_list: Record<string, number>[];
}

interface SimInternals {
  data: {
    system: { sysinfo: Record<string, unknown> };
    emeter?: { realtime?: RealtimeStore; daystat?: DayStatStore };
    children?: Record<
      string,
      { sysinfo: { alias: string }; emeter?: { realtime?: RealtimeStore; daystat?: DayStatStore } }
    >;
  };
  api?: { time?: { get_time?: () => unknown } };
  deviceNetworking: {
    address: string;
    responseDelay: number;
    udpSocket?: Socket;
    on(
      event: 'data',
      listener: (event: { time: number; protocol: 'udp' | 'tcp'; message: string }) => void,
    ): void;
    on(event: 'error', listener: (err: unknown) => void): void;
  };
  unreliablePercent: number;
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
}

const LOOPBACK = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/**
 * The simulator stores W/V/A/kWh for every model; v2 models answer `Math.floor(x * 1000)`. Modern
 * values are stored with half a unit added, so the floor gives back exactly the integer asked for.
 */
function toStore(values: SimRealtime): RealtimeStore {
  if ('power_mw' in values) {
    return {
      power: (values.power_mw + 0.5) / 1000,
      voltage: (values.voltage_mv + 0.5) / 1000,
      current: (values.current_ma + 0.5) / 1000,
      total: (values.total_wh + 0.5) / 1000,
    };
  }
  return { power: values.power, voltage: values.voltage, current: values.current, total: values.total };
}

let broadcastSocket: Socket | null = null;
let broadcastPort: number | null = null;
let broadcastUsers = 0;

async function acquireBroadcastReceiver(port: number): Promise<void> {
  if (broadcastSocket !== null) {
    if (broadcastPort !== port) {
      throw new Error(`a simulator fleet on port ${broadcastPort} is running; one port per process`);
    }
    broadcastUsers++;
    return;
  }
  const socket = createSocket({ type: 'udp4', reuseAddr: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, '127.255.255.255', () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => {});
  socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    if (LOOPBACK.test(rinfo.address)) UdpServer.emit('message', msg, rinfo);
  });
  UdpServer.setMaxListeners(0);
  broadcastSocket = socket;
  broadcastPort = port;
  broadcastUsers = 1;
}

function releaseBroadcastReceiver(): void {
  broadcastUsers--;
  if (broadcastUsers <= 0 && broadcastSocket !== null) {
    broadcastSocket.close();
    broadcastSocket = null;
    broadcastPort = null;
    broadcastUsers = 0;
  }
}

/**
 * Starts a simulated device. The simulator answers after `responseDelay` from a promise callback: an
 * answer due after the device was stopped would throw (an unhandled rejection that ends the process),
 * so sends on a closed socket are dropped, as a real network would drop them.
 */
async function startSim(sim: SimInternals): Promise<void> {
  await sim.start();
  const socket = sim.deviceNetworking.udpSocket;
  if (socket === undefined) return;
  const send = socket.send.bind(socket) as (...args: unknown[]) => void;
  (socket as unknown as { send: (...args: unknown[]) => void }).send = (...args: unknown[]) => {
    try {
      send(...args);
    } catch {
      // socket closed meanwhile: the answer is lost
    }
  };
}

/** Starts the devices; rejects (after stopping those started) if any address is not loopback or in use. */
export async function startSimulatorFleet(options: SimulatorFleetOptions): Promise<SimulatorFleet> {
  for (const spec of options.devices) {
    if (!LOOPBACK.test(spec.address))
      throw new Error(`simulated plugs live on loopback only: ${spec.address}`);
  }
  await acquireBroadcastReceiver(options.port);
  const sims = new Map<string, { sim: SimInternals; info: SimulatedDevice; running: boolean }>();
  const childOwner = new Map<string, SimInternals>();
  const listeners = new Set<(request: SimRequest) => void>();
  const animations = new Set<NodeJS.Timeout>();
  let stopped = false;

  const stopAll = async (): Promise<void> => {
    await Promise.all([...sims.values()].filter((s) => s.running).map((s) => s.sim.stop()));
    for (const s of sims.values()) s.running = false;
  };

  try {
    for (const spec of options.devices) {
      const device = new Device({
        model: spec.model,
        address: spec.address,
        port: options.port,
        ...(spec.alias === undefined ? {} : { alias: spec.alias }),
        responseDelay: spec.responseDelay ?? 0,
        unreliablePercent: spec.unreliablePercent ?? 0,
        ...(spec.deviceId === undefined ? {} : { data: { deviceId: spec.deviceId } as never }),
      });
      const sim = device as unknown as SimInternals;
      const sysinfo = sim.data.system.sysinfo;
      const deviceId = String(sysinfo['deviceId']);
      const childIds = Object.keys(sim.data.children ?? {});
      childIds.forEach((childId, i) => {
        childOwner.set(childId, sim);
        const alias = spec.outletAliases?.[i];
        const child = sim.data.children?.[childId];
        if (alias !== undefined && child !== undefined) child.sysinfo.alias = alias;
      });
      if (spec.realtime !== undefined) {
        const store = toStore(spec.realtime);
        if (childIds.length === 0 && sim.data.emeter?.realtime !== undefined)
          sim.data.emeter.realtime = { ...store };
        for (const childId of childIds) {
          const child = sim.data.children?.[childId];
          if (child?.emeter !== undefined) child.emeter.realtime = { ...store };
        }
      }
      // Socket errors (a client that gave up and reset its connection) must not crash the process.
      sim.deviceNetworking.on('error', () => {});
      sim.deviceNetworking.on('data', (event) => {
        for (const listener of listeners)
          listener({ deviceId, timeMs: event.time, protocol: event.protocol, message: event.message });
      });
      const entry = {
        sim,
        running: false,
        info: {
          deviceId,
          model: spec.model,
          alias: String(sysinfo['alias']),
          address: spec.address,
          port: options.port,
          childIds,
        },
      };
      if (sims.has(deviceId)) throw new Error(`duplicate simulated deviceId ${deviceId}`);
      sims.set(deviceId, entry);
      await startSim(sim);
      entry.running = true;
    }
  } catch (err) {
    await stopAll();
    releaseBroadcastReceiver();
    throw err;
  }

  const lookup = (deviceId: string) => {
    const entry = sims.get(deviceId);
    if (entry === undefined) throw new Error(`no simulated device ${deviceId}`);
    return entry;
  };

  return {
    port: options.port,
    get devices() {
      return [...sims.values()].map((s) => s.info);
    },
    setRealtime(id, values) {
      const store = toStore(values);
      const owner = childOwner.get(id);
      if (owner !== undefined) {
        const child = owner.data.children?.[id];
        if (child?.emeter === undefined) throw new Error(`outlet ${id} has no meter`);
        child.emeter.realtime = store;
        return;
      }
      const { sim } = lookup(id);
      if (sim.data.emeter?.realtime === undefined || sim.data.children !== undefined) {
        throw new Error(`device ${id} has no single meter (a strip: set its outlets by child id)`);
      }
      sim.data.emeter.realtime = store;
    },
    async move(deviceId, address) {
      if (!LOOPBACK.test(address)) throw new Error(`simulated plugs live on loopback only: ${address}`);
      const entry = lookup(deviceId);
      if (entry.running) await entry.sim.stop();
      entry.running = false;
      entry.sim.deviceNetworking.address = address;
      entry.info = { ...entry.info, address };
      await startSim(entry.sim);
      entry.running = true;
    },
    setDayStats(id, days) {
      const owner = childOwner.get(id);
      const sim = owner ?? lookup(id).sim;
      const emeter = owner === undefined ? sim.data.emeter : sim.data.children?.[id]?.emeter;
      if (emeter === undefined) throw new Error(`${id} has no meter`);
      // The simulator's old-firmware model (hs110) answers kWh in `energy`; the others Wh.
      const oldUnits = owner === undefined && lookup(id).info.model === 'hs110';
      emeter.daystat = {
        day_list: days.map((d) => ({
          year: d.year,
          month: d.month,
          day: d.day,
          ...(oldUnits ? { energy: d.energyWh / 1000 } : { energy_wh: d.energyWh }),
        })),
      };
    },
    setClockOffset(deviceId, offsetMs) {
      const { sim } = lookup(deviceId);
      const time = sim.api?.time;
      if (time === undefined) throw new Error(`device ${deviceId} has no clock`);
      time.get_time = () => {
        const d = new Date(Date.now() + offsetMs);
        return {
          year: d.getUTCFullYear(),
          month: d.getUTCMonth() + 1,
          mday: d.getUTCDate(),
          wday: d.getUTCDay(),
          hour: d.getUTCHours(),
          min: d.getUTCMinutes(),
          sec: d.getUTCSeconds(),
          err_code: 0,
        };
      };
    },
    async pause(deviceId) {
      const entry = lookup(deviceId);
      if (!entry.running) return;
      await entry.sim.stop();
      entry.running = false;
    },
    async resume(deviceId) {
      const entry = lookup(deviceId);
      if (entry.running) return;
      await startSim(entry.sim);
      entry.running = true;
    },
    setBehaviour(deviceId, behaviour) {
      const { sim } = lookup(deviceId);
      if (behaviour.responseDelay !== undefined) sim.deviceNetworking.responseDelay = behaviour.responseDelay;
      if (behaviour.unreliablePercent !== undefined) sim.unreliablePercent = behaviour.unreliablePercent;
    },
    animate(intervalMs = 1_000) {
      const stores = (): RealtimeStore[] =>
        [...sims.values()].flatMap(({ sim }) =>
          sim.data.children !== undefined
            ? Object.values(sim.data.children).flatMap((c) => (c.emeter?.realtime ? [c.emeter.realtime] : []))
            : sim.data.emeter?.realtime
              ? [sim.data.emeter.realtime]
              : [],
        );
      const timer = setInterval(() => {
        for (const rt of stores()) {
          const power = Math.min(3_500, Math.max(0, rt.power * (1 + (Math.random() - 0.5) * 0.1)));
          const voltage = Math.max(1, rt.voltage);
          rt.power = Math.round(power * 1000) / 1000;
          rt.current = Math.round((power / voltage) * 10_000) / 10_000;
          rt.total += (power * intervalMs) / 3.6e9;
        }
      }, intervalMs);
      timer.unref();
      animations.add(timer);
      return () => {
        clearInterval(timer);
        animations.delete(timer);
      };
    },
    onRequest(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      listeners.clear();
      for (const timer of animations) clearInterval(timer);
      animations.clear();
      await stopAll();
      releaseBroadcastReceiver();
    },
  };
}

export interface FleetLayoutOptions {
  /** Number of devices (plugs and strips). */
  readonly count: number;
  /** Every n-th device is an HS300 strip (0: none). */
  readonly stripEvery?: number;
  /** First address; the following ones count up (skipping .0 and .255). Default 127.0.20.1. */
  readonly firstAddress?: string;
  /** Alternate old-unit HS110 and new-unit HS110 v2 for single plugs (default true). */
  readonly mixUnits?: boolean;
}

/** The `count` consecutive loopback addresses from `first` (x.y.z.1 ... x.y.z.254, then x.y.(z+1).1). */
export function loopbackAddresses(first: string, count: number): string[] {
  const parts = first.split('.').map(Number);
  if (parts.length !== 4 || parts[0] !== 127 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not a loopback address: ${first}`);
  }
  let [, b = 0, c = 0, d = 1] = parts;
  const out: string[] = [];
  while (out.length < count) {
    if (d >= 255) {
      d = 1;
      c++;
      if (c > 255) {
        c = 0;
        b++;
        if (b > 255) throw new Error('ran out of loopback addresses');
      }
    }
    if (d === 0) d = 1;
    out.push(`127.${b}.${c}.${d}`);
    d++;
  }
  return out;
}

/** A demo/benchmark fleet: mostly HS110 plugs (both unit styles), some HS300 strips. */
export function fleetLayout(options: FleetLayoutOptions): SimDeviceSpec[] {
  const addresses = loopbackAddresses(options.firstAddress ?? '127.0.20.1', options.count);
  const stripEvery = options.stripEvery ?? 0;
  const mixUnits = options.mixUnits ?? true;
  return addresses.map((address, i) => {
    const n = i + 1;
    if (stripEvery > 0 && n % stripEvery === 0) {
      return {
        model: 'hs300',
        address,
        alias: `Strip ${n}`,
        outletAliases: [0, 1, 2, 3, 4, 5].map((o) => `Strip ${n} outlet ${o + 1}`),
        realtime: { power_mw: 20_000 + n, voltage_mv: 230_000, current_ma: 90, total_wh: 1000 + n },
      } satisfies SimDeviceSpec;
    }
    const modern = mixUnits && i % 2 === 1;
    return {
      model: modern ? 'hs110v2' : 'hs110',
      address,
      alias: `Plug ${n}`,
      realtime: modern
        ? { power_mw: 60_000 + n, voltage_mv: 230_500, current_ma: 260, total_wh: 5000 + n }
        : { power: 60 + n / 1000, voltage: 120.5, current: 0.5, total: 5 + n / 1000 },
    } satisfies SimDeviceSpec;
  });
}
