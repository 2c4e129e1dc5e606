import LossdHTTP
import LossdJSON
import LossdKernels
import LossdStore

/// `POST /v1/scaling/fit` and `POST /v1/scaling/predict` (docs/scaling.md): fitting a
/// scaling law to posted runs, with bootstrap intervals, and predicting from a fitted law
/// (inline or stored by name) with its derived quantities; the stored laws' own routes
/// are `StoredRoutes<ScalingLawResource>`. The numerics are the kernels' `ScalingFit`,
/// `ScalingBootstrap`, `ScalingModel.predict` and `ScalingDerived`.
enum ScalingEndpoints {
    static func register(on router: inout Router, slot: StoreSlot) {
        router.add("POST", "/v1/scaling/fit", cost: .heavy) { route throws(ServiceError) in try fit(route, slot: slot) }
        router.add("POST", "/v1/scaling/predict") { route throws(ServiceError) in try predict(route, slot: slot) }
        StoredRoutes<ScalingLawResource>.register(on: &router, slot: slot)
    }

    // MARK: Fit

    static let fitFields = ["law", "data", "params", "weights", "bootstrap", "name"]

    static func fit(_ route: RouteRequest, slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        let body = try RequestBody.object(route)
        try StrictFields.check(body, allowed: fitFields, pointer: "", place: "a scaling fit")
        try WorkingSet.reserve(WorkingSet.typical(for: body, factor: 8), for: "this scaling fit", in: route.context)
        let kind = try ScalingRequest.law(body)
        let name = try ScalingLawResource.optionalName(in: body)
        // Checked before the fit: no point fitting what cannot be stored.
        let store = name == nil ? nil : try slot.current()
        let params = try ScalingRequest.params(
            body, allowed: ScalingRequest.optionNames(kind) + ["huber_delta"], place: "the options of \(kind.rawValue)")
        let options = try ScalingRequest.options(params, kind: kind, fitting: true)
        let data = try ScalingRequest.data(body, kind: kind)
        let weights = try ScalingRequest.vector(body, "weights", pointer: "")
        let bootstrap = try BootstrapRequest(body["bootstrap"])
        let svg = AcceptHeader.prefers("image/svg+xml", route.request.headers["accept"])

        let result: ScalingFitResult
        var intervals: ScalingBootstrapResult?
        do {
            result = try ScalingFit.fit(data, options: options, weights: weights)
            if let bootstrap, !svg {
                intervals = try ScalingBootstrap.run(result, samples: bootstrap.samples, seed: bootstrap.seed, level: bootstrap.level)
            }
        } catch {
            throw ServiceError(error.rebased("/params/bootstrap", as: "/bootstrap"))
        }
        let model = result.model
        let report = result.report
        guard model.values.allFinite, result.report.objective.isFinite else {
            throw ServiceError.invalid(.valueOverflow, field: "/data", "the fitted law is not representable in float64")
        }
        if svg {
            // The plot's band is the bootstrap interval of the law at every plotted size.
            let options = bootstrap.map { ScalingSVG.Bootstrap(samples: $0.samples, seed: $0.seed, level: $0.level) }
            let drawn: String
            do {
                drawn = try ScalingSVG.fit(result, data: data, bootstrap: options)
            } catch {
                throw ServiceError(error.rebased("/params/bootstrap", as: "/bootstrap"))
            }
            return try stored(model, fittedOn: report.nPoints, answer: svgAnswer(drawn), as: name, in: store, route: route)
        }
        var members: [(String, JSONValue)] = [
            ("law", .string(kind.rawValue)),
            ("params", .object(model.named.map { ($0.name, .double($0.value)) })),
            ("options", .object(ScalingRequest.echo(model.law, huberDelta: options.huberDelta))),
            (
                "fit",
                [
                    "objective": .double(report.objective), "rmse_log": .double(report.rmseLog), "r2": finite(report.r2),
                    "n_points": .int(report.nPoints), "iterations": .int(report.iterations), "converged": .bool(report.converged),
                    "starts": .int(report.starts),
                ]
            ),
            ("fitted", .doubles(result.fitted)),
        ]
        if let intervals {
            members.append((
                "intervals",
                [
                    "level": .double(intervals.level), "samples": .int(intervals.samples), "refits": .int(intervals.refits),
                    "params": .object(zip(model.law.parameterNames, intervals.parameters).map { ($0, pair($1)) }),
                ]
            ))
        }
        if let derived = try derivedOnOwnData(model, data: data) { members.append(("derived", derived)) }
        return try stored(model, fittedOn: report.nPoints, answer: jsonAnswer(members, for: route), as: name, in: store, route: route)
    }

    /// The fit's answer, after storing the law when the request named it: then 201 with
    /// `Location` and `ETag` (`If-Match` / `If-None-Match: *` make the store conditional).
    static func stored(
        _ model: ScalingModel, fittedOn: Int, answer: HTTPResponse, as name: String?, in store: (any DocumentStore)?, route: RouteRequest
    ) throws(ServiceError) -> HTTPResponse {
        guard let name, let store else { return answer }
        let record = ScalingLawRecord(name: name, model: model, fittedOn: fittedOn, createdAt: ScalingLawResource.timestamp())
        return try StoredRoutes<ScalingLawResource>.storeFitted(record.stored, answer: answer, request: route.request, store: store)
    }

    /// What a fit says about its own data: power_law's reducible loss at each posted x,
    /// chinchilla's compute-optimal allocation at the largest posted budget 6·N·D, nmt's
    /// best split at the largest posted total.
    static func derivedOnOwnData(_ model: ScalingModel, data: ScalingData) throws(ServiceError) -> JSONValue? {
        do {
            switch data {
            case .powerLaw(let x, _):
                return ["reducible": .doubles(try ScalingDerived.reducible(model, x: x))]
            case .chinchilla(let n, let d, _):
                let budget = zip(n, d).map { 6 * $0 * $1 }.max() ?? 0
                return ["compute_optimal": .array(try ScalingDerived.computeOptimal(model, compute: [budget]).map(allocation))]
            case .nmt(let e, let d, _):
                let total = zip(e, d).map { $0 + $1 }.max() ?? 0
                return ["optimal_split": .array(try ScalingDerived.optimalSplit(model, totals: [total]).map(split))]
            case .lrAnnealing:
                return nil
            }
        } catch {
            throw ServiceError(error)
        }
    }

    /// `bootstrap: {"samples", "seed"?, "level"?}`.
    struct BootstrapRequest {
        var samples: Int
        var seed: UInt64 = 0
        var level = 0.95

        init?(_ node: JSONNode?) throws(ServiceError) {
            guard let node else { return nil }
            guard case .object(let object) = node else {
                throw ServiceError.invalid(.invalidParam, field: "/bootstrap", "`bootstrap` must be an object {\"samples\", \"seed\", \"level\"}")
            }
            try StrictFields.check(object, allowed: ["samples", "seed", "level"], pointer: "/bootstrap", place: "`bootstrap`")
            guard let samples = try ScalingRequest.number(object, "samples", pointer: "/bootstrap") else {
                throw ServiceError.missing("samples", pointer: "/bootstrap/samples")
            }
            guard samples == samples.rounded(), samples >= 1, samples <= Double(ScalingLimits.maxBootstrapSamples) else {
                throw ServiceError.invalid(
                    .invalidParam, field: "/bootstrap/samples",
                    "`samples` must be an integer in [1, \(ScalingLimits.maxBootstrapSamples)] (got \(ResolvedParameters.text(.number(samples))))")
            }
            self.samples = Int(samples)
            if let seed = try ScalingRequest.number(object, "seed", pointer: "/bootstrap") {
                guard seed == seed.rounded(), abs(seed) <= 9_007_199_254_740_991 else {
                    throw ServiceError.invalid(.invalidParam, field: "/bootstrap/seed", "`seed` must be an integer")
                }
                self.seed = UInt64(bitPattern: Int64(seed))
            }
            if let level = try ScalingRequest.number(object, "level", pointer: "/bootstrap") {
                guard level > 0, level < 1 else {
                    throw ServiceError.invalid(.invalidParam, field: "/bootstrap/level", "`level` must be in (0, 1)")
                }
                self.level = level
            }
        }
    }

    // MARK: Predict

    /// The members a predict request may have for each law.
    static func predictFields(_ kind: ScalingLawKind) -> [String] {
        let common = ["law", "params", "name"]
        switch kind {
        case .powerLaw: return common + ["x", "target_loss"]
        case .chinchilla: return common + ["n", "d", "compute"]
        case .nmt: return common + ["n_encoder", "n_decoder", "n_total"]
        case .lrAnnealing: return common + ["curve"]
        }
    }

    static func predict(_ route: RouteRequest, slot: StoreSlot) throws(ServiceError) -> HTTPResponse {
        let body = try RequestBody.object(route)
        // The law: stored under `name`, or inline as `law` and `params` (fitted parameters
        // and options in one object).
        let storedModel: ScalingModel?
        let kind: ScalingLawKind
        if let name = try ScalingLawResource.optionalName(in: body) {
            if body["law"] != nil || body["params"] != nil {
                throw ServiceError.invalid(
                    .invalidInput, field: "/name", "send either `name` (a stored law) or `law` and `params`, not both")
            }
            let model = try ScalingLawResource.model(named: name, slot: slot)
            (storedModel, kind) = (model, model.law.kind)
        } else {
            storedModel = nil
            kind = try ScalingRequest.law(body)
        }
        try StrictFields.check(body, allowed: predictFields(kind), pointer: "", place: "a \(kind.rawValue) prediction")
        try WorkingSet.reserve(WorkingSet.typical(for: body), for: "this prediction", in: route.context)
        let model: ScalingModel
        if let storedModel {
            model = storedModel
        } else {
            guard body["params"] != nil else { throw ServiceError.missing("params") }
            let params = try ScalingRequest.params(
                body, allowed: kind.parameterNames + ScalingRequest.optionNames(kind), place: "a \(kind.rawValue) law")
            let options = try ScalingRequest.options(params, kind: kind, fitting: false)
            var named: [String: Double] = [:]
            for name in kind.parameterNames {
                if let value = try ScalingRequest.number(params, name) { named[name] = value }
            }
            do {
                model = try ScalingModel(law: try ScalingLaw.resolve(kind, options: options, data: nil), named: named)
            } catch {
                throw ServiceError(error)
            }
        }

        var members: [(String, JSONValue)] = [("law", .string(kind.rawValue))]
        var derived: [(String, JSONValue)] = []
        // What the SVG answer plots (Accept: image/svg+xml).
        var plot = ScalingSVG.PredictInput()
        do {
            switch kind {
            case .powerLaw:
                if let x = try ScalingRequest.vector(body, "x", pointer: "") {
                    members.append(("loss", .doubles(try model.predict(.powerLaw(x: x)))))
                    plot.query = .powerLaw(x: x)
                    derived.append(("reducible", .doubles(try ScalingDerived.reducible(model, x: x))))
                }
                if let target = try ScalingRequest.number(body, "target_loss", pointer: "") {
                    plot.targetLoss = target
                    derived.append(("x_for_loss", try ScalingDerived.xForLoss(model, target: target).map(JSONValue.double) ?? .null))
                }
            case .chinchilla:
                let n = try ScalingRequest.vector(body, "n", pointer: ""), d = try ScalingRequest.vector(body, "d", pointer: "")
                if n != nil || d != nil {
                    guard let n, let d else { throw ServiceError.missing(n == nil ? "n" : "d") }
                    members.append(("loss", .doubles(try model.predict(.chinchilla(n: n, d: d)))))
                    plot.query = .chinchilla(n: n, d: d)
                }
                if let compute = try ScalingRequest.vector(body, "compute", pointer: "") {
                    plot.compute = compute
                    derived.append(("compute_optimal", .array(try ScalingDerived.computeOptimal(model, compute: compute).map(allocation))))
                }
            case .nmt:
                let e = try ScalingRequest.vector(body, "n_encoder", pointer: "")
                let d = try ScalingRequest.vector(body, "n_decoder", pointer: "")
                if e != nil || d != nil {
                    guard let e, let d else { throw ServiceError.missing(e == nil ? "n_encoder" : "n_decoder") }
                    members.append(("loss", .doubles(try model.predict(.nmt(nEncoder: e, nDecoder: d)))))
                    plot.query = .nmt(nEncoder: e, nDecoder: d)
                }
                if let totals = try ScalingRequest.vector(body, "n_total", pointer: "") {
                    plot.totals = totals
                    derived.append(("optimal_split", .array(try ScalingDerived.optimalSplit(model, totals: totals).map(split))))
                }
            case .lrAnnealing:
                guard let node = body["curve"] else { throw ServiceError.missing("curve") }
                guard case .object(let curve) = node else {
                    throw ServiceError.invalid(.invalidShape, field: "/curve", "`curve` must be an object {\"lr\", \"steps\"?}")
                }
                try StrictFields.check(curve, allowed: ["lr", "steps"], pointer: "/curve", place: "`curve`")
                let lr = try ScalingRequest.vector(curve, "lr", pointer: "/curve", required: true) ?? []
                let steps = try ScalingRequest.integers(curve, "steps", pointer: "/curve")
                let warmupSteps = if case .lrAnnealing(_, let warmup) = model.law { warmup } else { 0 }
                guard lr.count > warmupSteps else {
                    throw ServiceError.invalid(
                        .invalidInput, field: "/curve/lr",
                        "the schedule has \(lr.count) steps, none after the \(warmupSteps) warm-up steps")
                }
                let predicted: PredictedCurve
                do {
                    predicted = try ScalingDerived.curve(model, lr: lr, steps: steps)
                } catch {
                    throw ServiceError(error, prefix: "/curve")
                }
                members.append(("loss", .doubles(predicted.loss)))
                (plot.lr, plot.steps) = (lr, steps)
                derived = [
                    ("steps", .array(predicted.steps.map { .int($0) })), ("s1", .doubles(predicted.s1)), ("s2", .doubles(predicted.s2)),
                ]
            }
        } catch let error as ServiceError {
            throw error
        } catch let error as ScalingInputError {
            // Query fields are relative to the request's top level.
            throw ServiceError(error)
        } catch {
            throw ServiceError(status: .internalServerError, code: "internal", detail: "\(error)")
        }
        if case .doubles(let loss)? = members.first(where: { $0.0 == "loss" })?.1, !loss.allFinite {
            throw ServiceError.invalid(.valueOverflow, field: nil, "the predicted loss is not representable in float64")
        }
        if !derived.isEmpty { members.append(("derived", .object(derived))) }
        if AcceptHeader.prefers("image/svg+xml", route.request.headers["accept"]) {
            let drawn: String?
            do {
                drawn = try ScalingSVG.predict(model, plot)
            } catch {
                throw ServiceError(error)
            }
            guard let drawn else {
                throw ServiceError.invalid(
                    .missingField, field: nil,
                    "a plot needs something to predict: \(kind == .powerLaw ? "`x` or a reachable `target_loss`" : kind == .chinchilla ? "`n` and `d`, or `compute`" : "`n_encoder` and `n_decoder`, or `n_total`")")
            }
            return svgAnswer(drawn)
        }
        return try jsonAnswer(members, for: route)
    }

    /// An SVG plot; it depends on the request's Accept, which the answer says.
    static func svgAnswer(_ svg: String) -> HTTPResponse {
        HTTPResponse(status: .ok, headers: ["Content-Type": "image/svg+xml; charset=utf-8", "Vary": "Accept"], body: Array(svg.utf8))
    }

    // MARK: Rendering

    /// The JSON answer, or the multipart one (arrays as float64 `.npy` parts) when the
    /// request's Accept prefers `multipart/form-data`; `Vary: Accept` either way, since the
    /// same request preferring SVG gets the plot.
    static func jsonAnswer(_ members: [(String, JSONValue)], for route: RouteRequest) throws(ServiceError) -> HTTPResponse {
        LossdService.json(.object(members), output: try OutputEncoding(JSONObject(), for: route))
    }

    static func finite(_ value: Double) -> JSONValue { value.isFinite ? .double(value) : .null }

    static func pair(_ interval: ScalingInterval) -> JSONValue { .array([.double(interval.lower), .double(interval.upper)]) }

    static func allocation(_ a: ComputeOptimalAllocation) -> JSONValue {
        ["compute": .double(a.compute), "n_opt": .double(a.nOpt), "d_opt": .double(a.dOpt), "loss": .double(a.loss)]
    }

    static func split(_ s: EncoderDecoderSplit) -> JSONValue {
        ["n_total": .double(s.total), "n_encoder_opt": .double(s.nEncoder), "n_decoder_opt": .double(s.nDecoder), "loss": .double(s.loss)]
    }
}

extension ScalingInputError {
    /// The same error with a field under `old` moved under `new` (the kernels name the
    /// bootstrap options `/params/bootstrap/…`; the request has them at `/bootstrap/…`).
    func rebased(_ old: String, as new: String) -> ScalingInputError {
        guard let field, field.hasPrefix(old) else { return self }
        return ScalingInputError(reason, field: new + field.dropFirst(old.count), detail)
    }
}
