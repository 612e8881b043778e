"""The simulation: everything that stands in for the Pi, the phones and the internet.

None of it ships in the box's flow; the demo, the tests and machines without
a Pi use it.

* :mod:`~appliance.sim.packets` - the one packet builder (frames, DNS, TLS,
  QUIC, pcap files), for the simulation and the tests;
* :mod:`~appliance.sim.netns` - network namespaces: naming, running inside, cleanup;
* :mod:`~appliance.sim.hotspot` - :class:`SimulatedHotspot`, the hotspot in
  namespaces with the real hostapd, dnsmasq and nftables;
* :mod:`~appliance.sim.phone`, :mod:`~appliance.sim.internet`,
  :mod:`~appliance.sim.scan` - the simulated phones, the fake internet and a
  port scanner, each also a process run inside a namespace
  (``python -m appliance.sim phone|internet|scan``);
* :mod:`~appliance.sim.demo` - ``pocketcheck demo``.

``python -m appliance.sim cleanup`` removes the namespaces left by an aborted run.
"""
