using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Onnx;
using CamEngine.Tensors;
using NUnit.Framework;

namespace CamEngine.Tests.Robustness;

[TestFixture]
public sealed class ConcurrencyAndNumbersTests
{
    private static ModelFile Resnet() => OnnxConverter.ConvertFile(FixturePaths.Onnx("tiny_resnet"));

    [Test]
    public void Eight_threads_sharing_one_backend_get_the_single_threaded_maps_bit_for_bit()
    {
        using var model = DeviceModel.Load(Resnet(), TestDevice.Ilgpu);
        var explainer = new Explainer(model);
        var jobs = (from image in FixturePaths.Images
                    from layer in new[] { "/block2/relu2/Relu_output_0", "/block1/relu2/Relu_output_0" }
                    select (Input: Npy.Read(FixturePaths.Input(image)), Layer: layer)).ToArray();
        Assert.That(jobs, Has.Length.EqualTo(8));
        var sequential = jobs.Select(j => explainer.Explain(j.Input, new GradCam(), new ExplainOptions { Layers = [j.Layer] })[0].Map.Data).ToArray();
        var parallel = new float[8][];
        var threads = Enumerable.Range(0, 8).Select(i => new Thread(() =>
        {
            for (int repeat = 0; repeat < 3; repeat++)
                parallel[i] = explainer.Explain(jobs[i].Input, new GradCam(), new ExplainOptions { Layers = [jobs[i].Layer] })[0].Map.Data;
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        for (int i = 0; i < 8; i++)
            Assert.That(parallel[i], Is.EqualTo(sequential[i]), $"job {i}");
    }

    [Test]
    public void Same_input_same_device_gives_bit_identical_maps()
    {
        using var model = DeviceModel.Load(Resnet(), TestDevice.Ilgpu);
        var input = Npy.Read(FixturePaths.Input("chelsea"));
        var a = new Explainer(model).Explain(input, [new GradCam(), new GuidedBackprop()]);
        var b = new Explainer(model).Explain(input, [new GradCam(), new GuidedBackprop()]);
        foreach (var m in a.Keys)
        {
            Assert.That(b[m][0].Map.Data, Is.EqualTo(a[m][0].Map.Data), m);
            Assert.That(b[m][0].Raw.Data, Is.EqualTo(a[m][0].Raw.Data), m);
        }
    }

    [Test]
    public void A_non_finite_weight_is_reported_by_name()
    {
        var file = Resnet();
        var weights = file.Weights.ToDictionary(p => p.Key, p => p.Value);
        string name = file.Graph.Nodes.First(n => n.Op == Ops.Conv).Param("weight")!;
        var bad = (float[])weights[name].Data.Clone();
        bad[7] = float.NaN;
        weights[name] = new HostTensor(weights[name].Shape, bad);
        var e = Assert.Throws<InvalidModelFileException>(() => new ModelFile(file.Graph, weights).Validate());
        Assert.That(e!.Message, Does.Contain($"weight '{name}'").And.Contain("NaN").And.Contain("element 7"));
    }

    [Test]
    public void Non_finite_inputs_and_overflowing_layers_are_reported_not_drawn()
    {
        var file = Resnet();
        using var model = DeviceModel.Load(file, TestDevice.Ilgpu);
        var input = Npy.Read(FixturePaths.Input("chelsea"));
        var nan = new HostTensor(input.Shape, (float[])input.Data.Clone());
        nan.Data[100] = float.PositiveInfinity;
        var e = Assert.Throws<InvalidInputException>(() => new Explainer(model).Explain(nan, new GradCam()));
        Assert.That(e!.Message, Does.Contain("element 100"));

        // Weights of 3e38 in the second conv overflow float32: the error names that layer.
        var weights = file.Weights.ToDictionary(p => p.Key, p => p.Value);
        var conv = file.Graph.Nodes.Where(n => n.Op == Ops.Conv).ElementAt(1);
        string w = conv.Param("weight")!;
        weights[w] = new HostTensor(weights[w].Shape, Enumerable.Repeat(3e38f, weights[w].Length).ToArray());
        using var huge = DeviceModel.Load(new ModelFile(file.Graph, weights), TestDevice.Ilgpu);
        var o = Assert.Throws<CamEngineException>(() => new Explainer(huge).Explain(input, new GradCam()));
        Assert.That(o!.Message, Does.Contain($"node '{conv.Name}'"));
    }

    [Test]
    public void A_memory_budget_splits_the_batch_without_changing_any_map()
    {
        using var model = DeviceModel.Load(Resnet(), TestDevice.Cpu);
        var images = FixturePaths.Images.Select(i => Npy.Read(FixturePaths.Input(i))).ToList();
        var input = new HostTensor([4, 3, 32, 32], images.SelectMany(t => t.Data).ToArray());
        var explainer = new Explainer(model);
        var methods = new CamMethod[] { new GradCam(), new ScoreCam(), new GuidedBackprop() };
        var whole = explainer.Explain(input, methods, new ExplainOptions { Target = Target.TopK(2) });
        // The smallest budget the plan accepts: one row per batch (a smaller one is refused, MemoryPlanTests).
        long least = MemoryPlan.For(model.Graph, long.MaxValue, 32, 1, methods, [model.Graph.DefaultTargetLayer()], Convention.PytorchGradCam).MinimumBytes;
        var plan = MemoryPlan.For(model.Graph, least, 32, 8, methods, [model.Graph.DefaultTargetLayer()], Convention.PytorchGradCam);
        Assert.That(plan.ExplainRows, Is.EqualTo(1));
        var split = explainer.Explain(input, methods, new ExplainOptions { Target = Target.TopK(2), MemoryBudgetBytes = least });
        foreach (var m in methods)
        {
            Assert.That(split[m.Name], Has.Count.EqualTo(8), m.Name);
            for (int r = 0; r < 8; r++)
            {
                Assert.That(split[m.Name][r].Image, Is.EqualTo(whole[m.Name][r].Image), m.Name);
                Assert.That(split[m.Name][r].TargetClass, Is.EqualTo(whole[m.Name][r].TargetClass), m.Name);
                TensorAssert.Close(split[m.Name][r].Map.Data, whole[m.Name][r].Map.Data, 1e-5, 1e-4, $"{m.Name} row {r}");
            }
        }
    }
}
