/// Crowd annotations coded as integers: annotation a says annotator `annotators[a]` gave
/// item `items[a]` the label `labels[a]` (docs/aggregation.md §1). Items are indexed in the
/// response order (some may have no annotation), annotators in first-seen order.
///
/// The type also holds the per-item and per-annotator views (CSR, annotation order kept
/// inside each list) that the methods iterate over, so every sum runs in a fixed order and
/// the results do not depend on the thread count.
public struct CrowdAnnotations: Sendable {
    public let itemCount: Int
    public let annotatorCount: Int
    public let numClasses: Int
    public let items: [Int32]
    public let annotators: [Int32]
    public let labels: [Int32]
    /// For MACE's ordering rule (docs/aggregation.md §5): annotator codes sorted by their ids
    /// (`annotatorSortOrder[r]` = code of the r-th smallest id). Identity by default.
    public let annotatorSortOrder: [Int]

    /// Distinct observed labels, ascending (L).
    public let observedLabels: [Int]
    /// Distinct labels in first-seen order (MACE's and GLAD's codes).
    public let labelsFirstSeen: [Int]
    /// Column of each class in L, −1 for classes never used.
    public let columnOfClass: [Int]
    /// Items with at least one annotation, ascending index.
    public let annotated: [Bool]

    /// Annotations of item t: `byItem[itemStart[t]..<itemStart[t+1]]` (annotation indices).
    public let itemStart: [Int]
    public let byItem: [Int32]
    /// Annotations of annotator w: `byAnnotator[annotatorStart[w]..<annotatorStart[w+1]]`.
    public let annotatorStart: [Int]
    public let byAnnotator: [Int32]

    public var count: Int { items.count }
    /// K' = |L|.
    public var observedCount: Int { observedLabels.count }
    public var annotatedItemCount: Int { annotated.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// - Precondition: every index is in range (the service validates before calling).
    public init(
        itemCount: Int, annotatorCount: Int, numClasses: Int, items: [Int32], annotators: [Int32], labels: [Int32],
        annotatorSortOrder: [Int]? = nil
    ) {
        precondition(items.count == annotators.count && items.count == labels.count && !items.isEmpty)
        self.itemCount = itemCount
        self.annotatorCount = annotatorCount
        self.numClasses = numClasses
        self.items = items
        self.annotators = annotators
        self.labels = labels
        self.annotatorSortOrder = annotatorSortOrder ?? Array(0..<annotatorCount)

        var used = [Bool](repeating: false, count: numClasses)
        var firstSeen: [Int] = []
        var isAnnotated = [Bool](repeating: false, count: itemCount)
        for a in 0..<labels.count {
            let l = Int(labels[a])
            precondition(l >= 0 && l < numClasses && Int(items[a]) < itemCount && Int(annotators[a]) < annotatorCount)
            if !used[l] {
                used[l] = true
                firstSeen.append(l)
            }
            isAnnotated[Int(items[a])] = true
        }
        labelsFirstSeen = firstSeen
        observedLabels = firstSeen.sorted()
        var columns = [Int](repeating: -1, count: numClasses)
        for (j, l) in observedLabels.enumerated() { columns[l] = j }
        columnOfClass = columns
        annotated = isAnnotated
        (itemStart, byItem) = CrowdAnnotations.groups(items, count: itemCount)
        (annotatorStart, byAnnotator) = CrowdAnnotations.groups(annotators, count: annotatorCount)
    }

    /// A stable counting sort of annotation indices by key.
    private static func groups(_ keys: [Int32], count: Int) -> ([Int], [Int32]) {
        var start = [Int](repeating: 0, count: count + 1)
        for k in keys { start[Int(k) + 1] += 1 }
        for i in 0..<count { start[i + 1] += start[i] }
        var next = start
        var order = [Int32](repeating: 0, count: keys.count)
        for (a, k) in keys.enumerated() {
            order[next[Int(k)]] = Int32(a)
            next[Int(k)] += 1
        }
        return (start, order)
    }

    /// n_tk: votes per item and class, [items][K].
    public func voteCounts() -> Matrix {
        var n = Matrix(zeros: itemCount, numClasses)
        for a in 0..<count { n[Int(items[a]), Int(labels[a])] += 1 }
        return n
    }

    /// For each annotation, whether it is the first of its identical (item, annotator, label)
    /// triples (crowd-kit's `get_accuracy` de-duplicates; docs/aggregation.md §2).
    public func firstOfTriple() -> [Bool] {
        var first = [Bool](repeating: true, count: count)
        var seen = Set<Int>()
        for w in 0..<annotatorCount {
            seen.removeAll(keepingCapacity: true)
            for a in byAnnotator[annotatorStart[w]..<annotatorStart[w + 1]] {
                let key = Int(items[Int(a)]) &* numClasses &+ Int(labels[Int(a)])
                if !seen.insert(key).inserted { first[Int(a)] = false }
            }
        }
        return first
    }
}

/// What an aggregation method returns (docs/aggregation.md §1).
public struct AggregationResult: Sendable {
    /// [items][K], rows summing to 1 (uniform for items without annotations).
    public var soft: Matrix
    /// Argmax of each row (lowest index on ties), −1 for items without annotations.
    public var labels: [Int]
    /// Per annotator; nil where the method defines none.
    public var skill: [Double]?
    /// [annotators][K][K] (true class, observed label): Dawid–Skene only.
    public var confusion: Tensor?
    /// Class priors π [K] (Dawid–Skene).
    public var priors: [Double]?
    /// GLAD's per-item log inverse difficulty (nil for items without annotations).
    public var itemDifficulty: [Double?]?
    public var iterations: Int
    public var converged: Bool

    public init(soft: Matrix, labels: [Int], skill: [Double]? = nil, iterations: Int = 1, converged: Bool = true) {
        self.soft = soft
        self.labels = labels
        self.skill = skill
        self.iterations = iterations
        self.converged = converged
    }
}

/// The aggregation methods (docs/aggregation.md).
public enum AggregationMethod: String, Sendable, CaseIterable {
    case majorityVote = "majority_vote"
    case frequency
    case softmax
    case dawidSkene = "dawid_skene"
    case glad
    case mace
    case wawa
    case zeroBasedSkill = "zero_based_skill"
    case average

    /// `average`'s default components, in the paper's order (docs/aggregation.md §6).
    public static let averageDefault: [AggregationMethod] = [
        .frequency, .softmax, .dawidSkene, .glad, .mace, .wawa, .zeroBasedSkill,
    ]
}

/// Shared steps of the methods.
public enum Aggregation {
    /// Uniform rows for unannotated items, argmax (lowest index) for the others.
    static func finish(_ soft: inout Matrix, _ data: CrowdAnnotations) -> [Int] {
        let k = data.numClasses
        var hard = [Int](repeating: -1, count: data.itemCount)
        for t in 0..<data.itemCount {
            if !data.annotated[t] {
                for c in 0..<k { soft[t, c] = 1 / Double(k) }
                continue
            }
            var best = 0
            var bestValue = soft[t, 0]
            for c in 1..<k where soft[t, c] > bestValue {
                best = c
                bestValue = soft[t, c]
            }
            hard[t] = best
        }
        return hard
    }

    /// Averages component soft labels with weights (normalised here) (docs/aggregation.md §6).
    public static func average(_ components: [Matrix], weights: [Double], data: CrowdAnnotations) -> AggregationResult {
        precondition(components.count == weights.count && !components.isEmpty)
        let total = weights.reduce(0, +)
        var soft = Matrix(zeros: data.itemCount, data.numClasses)
        for (m, w) in zip(components, weights) where w > 0 {
            let f = w / total
            for i in 0..<soft.values.count { soft.values[i] += f * m.values[i] }
        }
        let hard = finish(&soft, data)
        return AggregationResult(soft: soft, labels: hard)
    }
}
