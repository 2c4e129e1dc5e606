import Dispatch
import LossdJSON
import LossdKernels
import LossdService

/// The cost of every catalogue loss (value + gradient) relative to cross_entropy, on
/// N = 4096 rows of C = 1000 classes (embedding losses: N = 4096 vectors of D = 1000;
/// segmentation losses: logits [4][4][512][512], as many values), timed from parsed tensors
/// to the kernel's output, 1 thread.
func benchLossCosts() {
    let n = 4096, c = 1000
    var random = Generator(state: 11)
    func matrix(_ rows: Int, _ cols: Int, _ range: ClosedRange<Double>) -> JSONNode {
        .numbers(NumericArray(shape: [rows, cols], values: (0..<(rows * cols)).map { _ in Double.random(in: range, using: &random) }))
    }
    func vector(_ values: [Double]) -> JSONNode { .numbers(NumericArray(shape: [values.count], values: values)) }

    let labels = vector((0..<n).map { _ in Double(Int.random(in: 0..<c, using: &random)) })
    var multiLabel = [Double](repeating: 0, count: n * c)
    for r in 0..<n {
        for _ in 0..<3 { multiLabel[r * c + Int.random(in: 0..<c, using: &random)] = 1 }
    }
    let pool: [String: JSONNode] = [
        "logits": matrix(n, c, -4...4),
        "labels": labels,
        "targets": .numbers(NumericArray(shape: [n, c], values: multiLabel)),
        "teacher_logits": matrix(n, c, -4...4),
        "values": vector((0..<n).map { _ in Double.random(in: -0.9...0.9, using: &random) }),
        "queries": matrix(n, c, -1...1),
        "keys": matrix(n, c, -1...1),
        "embeddings": matrix(n, c, -1...1),
        "predictions": vector((0..<n).map { _ in Double.random(in: -1...1, using: &random) }),
        "bags": vector((0..<n).map { Double($0 / 16) }),
        "bag_responses": vector((0..<(n / 16)).map { _ in Double.random(in: -1...1, using: &random) }),
        // Second wave: soft target rows, adversarial logits, token log-probabilities [N][T = C],
        // 0/1 outcomes, class prototypes [C][D = C].
        "targets:soft": .numbers(NumericArray(shape: [n, c], values: softRows(n, c, &random))),
        "adv_logits": matrix(n, c, -4...4),
        "log_probs:tokens": matrix(n, c, -4...(-0.01)),
        "ref_log_probs": matrix(n, c, -4...(-0.01)),
        "outcomes": vector((0..<n).map { Double($0 % 2) }),
        "prototypes": matrix(c, c, -1...1),
    ]
    // Segmentation: 4 samples of 4 classes on 512x512, the class map a few blobs (stripes of
    // noise-free bands), the logits agreeing with it plus noise.
    let side = 512, segClasses = 4, segSamples = 4
    var classMap = [Double](repeating: 0, count: segSamples * side * side)
    for i in classMap.indices {
        let x = i % side, y = (i / side) % side
        classMap[i] = Double(((x / 37) + (y / 53)) % segClasses)
    }
    var segLogits = [Double](repeating: 0, count: segSamples * segClasses * side * side)
    for sample in 0..<segSamples {
        for c in 0..<segClasses {
            for s in 0..<(side * side) {
                let hit = classMap[sample * side * side + s] == Double(c)
                segLogits[(sample * segClasses + c) * side * side + s] = (hit ? 2 : 0) + Double.random(in: -1.5...1.5, using: &random)
            }
        }
    }
    let segmentation: [String: JSONNode] = [
        "logits": .numbers(NumericArray(shape: [segSamples, segClasses, side, side], values: segLogits)),
        "labels": .numbers(NumericArray(shape: [segSamples, side, side], values: classMap)),
        "skeleton": .numbers(NumericArray(shape: [segSamples, side, side], values: classMap.map { $0 == 1 ? 1 : 0 })),
    ]
    let bins: JSONNode = .object(JSONObject(members: [("min", .number(-1)), ("max", .number(1)), ("count", .number(Double(c)))]))
    // Which inputs (and params) each loss is timed with; the rest take logits and labels.
    // A pool key `name:variant` is sent as the member `name`.
    let recipes: [String: (inputs: [String], params: [(String, JSONNode)])] = [
        "log_z_penalty": (["logits"], []),
        "binary_cross_entropy": (["logits", "targets"], []),
        "decoupled_softmax": (["logits", "targets"], []),
        "multilabel_infonce": (["logits", "targets"], []),
        "soft_topk": (["logits", "targets"], []),
        "kd_kl": (["logits", "teacher_logits", "labels"], []),
        "dhkd_logit": (["logits", "teacher_logits"], []),
        "hl_gauss": (["logits", "values"], [("bins", bins)]),
        "two_hot": (["logits", "values"], [("bins", bins)]),
        "aggregate_response": (["predictions", "bags", "bag_responses"], []),
        "info_nce": (["queries", "keys"], []),
        "nt_xent": (["queries", "keys"], []),
        "cacr": (["queries", "keys"], []),
        "supcon": (["embeddings", "labels"], []),
        "tcm": (["embeddings", "labels"], []),
        "implicit_prm": (["log_probs:tokens", "ref_log_probs", "outcomes"], []),
        "kl_div": (["logits", "targets:soft"], []),
        "comp_sum_adversarial": (["logits", "adv_logits", "labels"], []),
        "normalized_softmax": (["embeddings", "prototypes", "labels"], []),
    ]

    print("== cost of each loss (value + gradient) relative to cross_entropy, \(n)x\(c), 1 thread")
    let savedThreads = Parallel.maxThreads, savedBLAS = BLAS.threadCount
    Parallel.maxThreads = 1
    BLAS.setThreadCount(1)
    var baseline = 0.0
    var rows: [(String, Double)] = []
    for name in LossTiming.lossNames {
        let recipe = recipes[name] ?? (["logits", "labels"], [])
        var members: [(key: String, value: JSONNode)] = recipe.inputs.map { (String($0.prefix { $0 != ":" }), pool[$0]!) }
        if ["dice", "cldice", "skeleton_recall"].contains(name) {
            members = [("logits", segmentation["logits"]!), name == "skeleton_recall" ? ("skeleton", segmentation["skeleton"]!) : ("labels", segmentation["labels"]!)]
        }
        if !recipe.params.isEmpty { members.append(("params", .object(JSONObject(members: recipe.params)))) }
        let request = JSONObject(members: members)
        var failure: String?
        let ms = time(3) {
            do throws(ServiceError) {
                try LossTiming.evaluate(name, request: request, gradient: true)
            } catch {
                failure = error.detail
            }
        }
        if let failure {
            print("\(name): not timed (\(failure))")
            continue
        }
        if name == "cross_entropy" { baseline = ms }
        rows.append((name, ms))
    }
    Parallel.maxThreads = savedThreads
    BLAS.setThreadCount(savedBLAS)
    print("loss                         ms      x cross_entropy")
    for (name, ms) in rows {
        let ratio = baseline > 0 ? ms / baseline : 0
        print("\(pad(name, 26)) \(pad(format3(ms), 10)) \(format3(ratio))")
    }
}

/// `rows` random probability rows of `cols` entries (each summing to 1).
func softRows(_ rows: Int, _ cols: Int, _ random: inout Generator) -> [Double] {
    var values = (0..<(rows * cols)).map { _ in Double.random(in: 0.01...1, using: &random) }
    for r in 0..<rows {
        let total = values[(r * cols)..<((r + 1) * cols)].reduce(0, +)
        for k in (r * cols)..<((r + 1) * cols) { values[k] /= total }
    }
    return values
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
