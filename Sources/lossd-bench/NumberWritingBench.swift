import LossdJSON
import LossdService

/// Writing gradients as JSON: ns per value for 262,144 random doubles in [-1, 1]·1e-3, the
/// shortest round-trip writer (JSONNumberWriter, Schubfach) against `Double.description`, which
/// JSONValue used before; then the whole row writer (`JSONValue.doubles(...).bytes`).
func benchNumberWriting() {
    let count = 262_144
    var generator = Generator(state: 2024)
    let values = (0..<count).map { _ in Double.random(in: -1...1, using: &generator) * 1e-3 }
    var out: [UInt8] = []
    out.reserveCapacity(count * 26)

    print("== JSON number writing: \(count) random doubles in [-1, 1]*1e-3 (gradient-like)")
    let shortestMs = time(20) {
        out.removeAll(keepingCapacity: true)
        for v in values {
            JSONNumberWriter.appendShortest(v, to: &out)
            out.append(UInt8(ascii: ","))
        }
    }
    let shortestBytes = out.count
    let descriptionMs = time(5) {
        out.removeAll(keepingCapacity: true)
        for v in values {
            out.append(contentsOf: v.description.utf8)
            out.append(UInt8(ascii: ","))
        }
    }
    let same = shortestBytes == out.count
    var rowBytes = 0
    let rowMs = time(20) { rowBytes = JSONValue.doubles(values).bytes.count }
    let perValue = { (ms: Double) in ms * 1e6 / Double(count) }
    print("lossd shortest writer (Schubfach): \(format3(perValue(shortestMs))) ns/value, \(format3(shortestMs)) ms")
    print("Double.description: \(format3(perValue(descriptionMs))) ns/value, \(format3(descriptionMs)) ms\(same ? "" : " (output length differs!)")")
    print("shortest writer vs description: \(format3(descriptionMs / shortestMs))x faster")
    print("JSONValue.doubles row writer: \(format3(perValue(rowMs))) ns/value, \(format3(Double(rowBytes) / 1e6)) MB")
}
