#if canImport(Glibc)
    import Glibc
#endif

/// The `process_*` metrics Prometheus client libraries export, read from /proc at scrape
/// time: what an operator graphs first for a sidecar (resident memory against the
/// container's limit, CPU, file descriptors).
struct ProcessMetrics {
    var residentBytes: Double
    var virtualBytes: Double
    var cpuSeconds: Double
    var openFDs: Double
    var maxFDs: Double
    var startTimeSeconds: Double

    /// A sample of this process, nil where /proc is not available.
    static func sample() -> ProcessMetrics? {
        guard let stat = readFile("/proc/self/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may contain spaces), starting at field 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        func field(_ number: Int) -> Double { Double(fields[safe: number - 3] ?? "") ?? 0 }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let page = Double(sysconf(Int32(_SC_PAGESIZE)))
        var bootTime = 0.0
        if let machine = readFile("/proc/stat"),
            let line = machine.split(separator: "\n").first(where: { $0.hasPrefix("btime ") })
        {
            bootTime = Double(line.split(separator: " ").last ?? "") ?? 0
        }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return ProcessMetrics(
            residentBytes: field(24) * page,
            virtualBytes: field(23),
            cpuSeconds: (field(14) + field(15)) / ticks,
            openFDs: Double(countEntries("/proc/self/fd")),
            maxFDs: Double(limit.rlim_cur),
            startTimeSeconds: bootTime + field(22) / ticks)
    }

    /// The exposition lines of the family.
    var exposition: String {
        let rows: [(String, String, String, Double)] = [
            ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", residentBytes),
            ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", virtualBytes),
            ("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", cpuSeconds),
            ("process_open_fds", "gauge", "Number of open file descriptors.", openFDs),
            ("process_max_fds", "gauge", "Maximum number of open file descriptors.", maxFDs),
            ("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", startTimeSeconds),
        ]
        var out = ""
        for (name, kind, help, value) in rows {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(kind)\n\(name) \(PrometheusRegistry.format(value))\n"
        }
        return out
    }

    private static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var text = ""
        var buffer = [CChar](repeating: 0, count: 4096)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            text += String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        return text
    }

    private static func countEntries(_ directory: String) -> Int {
        guard let dir = opendir(directory) else { return 0 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { count += 1 }
        }
        return count - 1  // the descriptor opendir itself holds
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
