using CamEngine.Cli;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary>The `cam` command line, run in process: exit codes, one-line errors, files written.</summary>
[TestFixture]
public sealed class CliTests : CliTestBase
{
    private static string Device => Environment.GetEnvironmentVariable("CAMENGINE_TEST_DEVICE") ?? "ilgpu-cpu";

    [Test]
    public void Convert_writes_a_model_that_loads()
    {
        string output = Path.Combine(Dir, "m.safetensors");
        var r = Cam("convert", FixturePaths.Onnx("tiny_gapcnn"), "-o", output);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("24,234 parameters"));
        var model = ModelFile.Load(output);
        Assert.That(model.Graph.Nodes, Has.Count.EqualTo(12));
    }

    [Test]
    public void Convert_records_scale_and_channel_order_and_refuses_bad_preprocessing_options()
    {
        string output = Path.Combine(Dir, "m.safetensors");
        var r = Cam("convert", FixturePaths.Onnx("tiny_gapcnn"), "-o", output, "--scale", "1/127.5", "--channel-order", "bgr");
        Assert.That(r.Code, Is.Zero, r.Err);
        var p = ModelFile.Load(output).Graph.Preprocessing;
        Assert.That((p.Scale, p.ChannelOrder), Is.EqualTo((1f / 127.5f, "bgr")));
        Assert.That(Cam("info", output).Out, Does.Contain("as BGR"));

        AssertOneLineError(Cam("convert", FixturePaths.Onnx("tiny_gapcnn"), "-o", output, "--overwrite", "--channel-order", "gbr"), "unknown channel-order 'gbr'; did you mean 'bgr'?");
        AssertOneLineError(Cam("convert", FixturePaths.Onnx("tiny_gapcnn"), "-o", output, "--overwrite", "--scale", "0"), "--scale");
        AssertOneLineError(Cam("convert", FixturePaths.Onnx("tiny_gapcnn"), "-o", output, "--overwrite", "--preprocess", FixturePaths.Onnx("tiny_gapcnn"),
            "--std", "1,1,1"), "drop --std");
        // A classifier is not a preprocessing graph: its output is not an image of the model's input shape.
        AssertOneLineError(Cam("convert", FixturePaths.Onnx("tiny_gapcnn"), "-o", output, "--overwrite", "--preprocess", FixturePaths.Onnx("tiny_gapcnn")),
            "preprocessing ONNX is not recognised");
    }

    [Test]
    public void Convert_refuses_a_truncated_onnx_file_with_exit_code_2_and_writes_nothing()
    {
        var bytes = File.ReadAllBytes(FixturePaths.Onnx("tiny_resnet"));
        string truncated = Path.Combine(Dir, "t.onnx");
        File.WriteAllBytes(truncated, bytes[..(bytes.Length / 2)]);
        string output = Path.Combine(Dir, "t.safetensors");
        AssertOneLineError(Cam("convert", truncated, "-o", output), "truncated or corrupt");
        Assert.That(Directory.GetFiles(Dir), Is.EqualTo(new[] { truncated }));
    }

    [Test]
    public void A_corrupted_safetensors_header_is_refused_with_exit_code_2()
    {
        string model = Path.Combine(Dir, "bad.safetensors");
        var bytes = File.ReadAllBytes(Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_resnet.safetensors"));
        bytes[8] = (byte)'['; // the JSON header must start with '{'
        File.WriteAllBytes(model, bytes);
        AssertOneLineError(Cam("info", model), "bad.safetensors");
        AssertOneLineError(Cam("explain", model, FixturePaths.Input("chelsea"), "--out", Dir), "bad.safetensors");
        // The converter reads ONNX only: a safetensors file handed to it is refused as ONNX, in one line.
        AssertOneLineError(Cam("convert", model, "-o", Path.Combine(Dir, "x.safetensors")), "ONNX");
        Assert.That(File.Exists(Path.Combine(Dir, "x.safetensors")), Is.False);
    }

    [Test]
    public void Explain_writes_the_documented_files_and_they_match_pytorch_grad_cam()
    {
        string model = Path.Combine(Dir, "m.safetensors");
        Assert.That(Cam("convert", FixturePaths.Onnx("tiny_resnet"), "-o", model).Code, Is.Zero);
        var r = Cam("explain", model, FixturePaths.Input("coffee"), "--method", "gradcam,guided-backprop",
            "--layer", "/block2/relu2/Relu_output_0", "--out", Dir, "--npy", "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        string stem = Path.Combine(Dir, "coffee_32_imagenet");
        foreach (var suffix in new[] { ".gradcam.png", ".gradcam.npy", ".gradcam.raw.npy", ".guided-backprop.png",
                                       ".guided-backprop.npy", ".guided-backprop.raw.npy" })
            Assert.That(File.Exists(stem + suffix), Is.True, suffix);
        var reference = Npz.Read(FixturePaths.Refs("tiny_resnet", "coffee"));
        var map = Npy.Read(stem + ".gradcam.npy");
        Assert.That(map.Shape, Is.EqualTo(new[] { 32, 32 }));
        var expected = (float[])reference["L0.pgc.gradcam.cam"].Data.Clone();
        CamEngine.Imaging.MapOps.MinMaxNormalize(expected);
        TensorAssert.Close(map.Data, expected, 1e-3, 0, "final map from the .npy file");
        var raw = Npy.Read(stem + ".gradcam.raw.npy");
        Assert.That(raw.Shape, Is.EqualTo(new[] { 16, 16 }));
        TensorAssert.Close(raw.Data, reference["L0.pgc.gradcam.raw"].Data, 1e-6, 1e-3, "raw map from the .npy file");
        Assert.That(Npy.Read(stem + ".guided-backprop.raw.npy").Shape, Is.EqualTo(new[] { 3, 32, 32 }));
        var png = CamEngine.Imaging.ImageDecoder.Load(stem + ".gradcam.png");
        Assert.That((png.Width, png.Height), Is.EqualTo((32, 32)));
    }

    [Test]
    public void Explain_with_several_methods_writes_a_labelled_grid_and_honours_the_new_options()
    {
        string model = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_gapcnn.safetensors");
        string input = FixturePaths.Input("chelsea");
        var r = Cam("explain", model, input, "--method", "hirescam,xgradcam,layercam", "--convention", "torchcam",
            "--fusion", "max", "--seed", "3", "--eigen-smooth", "--out", Dir, "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        string stem = Path.Combine(Dir, "chelsea_32_imagenet");
        foreach (var m in new[] { "hirescam", "xgradcam", "layercam" })
            Assert.That(File.Exists($"{stem}.{m}.png"), Is.True, m);
        var grid = CamEngine.Imaging.ImageDecoder.Load(stem + ".grid.png");
        // On this GAP-linear head HiResCAM = XGrad-CAM: the grid says so under its tiles (lines of 10 rows, 3 px
        // padding above and below, a 4 px gap) and stdout carries the same note.
        const string note = "hirescam = xgradcam: gradient constant over each channel (GAP then linear): XGrad-CAM = HiResCAM";
        Assert.That(r.Out, Does.Contain("note: chelsea_32_imagenet: identical tiles " + note));
        int lines = CamEngine.Imaging.Grid.Wrap(note, 268 - 2 * 4 - 2 * 3, 1).Count();
        Assert.That(lines, Is.EqualTo(3));
        Assert.That((grid.Width, grid.Height), Is.EqualTo((4 + 2 * 132, 4 + 2 * (13 + 128 + 4) + lines * 10 + 2 * 3 + 4)));

        // top-2: one file per class, named with the class; the reference list of classes comes from `predict`.
        r = Cam("explain", model, input, "--target", "top2", "--npy", "--out", Dir, "--device", Device, "--overwrite");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(Directory.GetFiles(Dir, "chelsea_32_imagenet.gradcam.c?.npy").Length, Is.EqualTo(2));
        var reference = Npz.Read(FixturePaths.Refs("tiny_gapcnn", "chelsea"));
        var top1 = Npy.Read($"{stem}.gradcam.c9.npy");
        var expected = (float[])reference["L1.pgc.gradcam.cam"].Data.Clone();
        CamEngine.Imaging.MapOps.MinMaxNormalize(expected);
        TensorAssert.Close(top1.Data, expected, 1e-3, 0, "top-1 row of a top-2 run");

        r = Cam("explain", model, input, "--target", $"cosine:{input}", "--out", Dir, "--device", Device, "--overwrite");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("similarity, score 1"));
        AssertOneLineError(Cam("explain", model, input, "--convention", "keras"), "unknown convention 'keras'");
        AssertOneLineError(Cam("explain", model, input, "--fusion", "sum"), "unknown fusion 'sum'");
        // A per-image list that does not fit the inputs is found out after the first batch: its files are removed.
        string perImage = Path.Combine(Dir, "per-image");
        AssertOneLineError(Cam("explain", model, input, "--target", "1,2", "--out", perImage, "--device", Device), "one per image");
        Assert.That(Directory.Exists(perImage) ? Directory.GetFiles(perImage, "*.png") : [], Is.Empty);
    }

    [Test]
    public void Class_model_writes_the_synthesized_image_and_perturbation_options_parse()
    {
        string model = Path.Combine(Dir, "tiny.safetensors");
        File.WriteAllBytes(model, CamEngine.Tests.Model.TinyModel.ValidBytes());
        string input = Path.Combine(Dir, "x.npy");
        var x = new CamEngine.Tensors.HostTensor([1, 3, 8, 8], TensorAssert.Random(new Random(3), 192));
        Npy.Write(input, x);
        var r = Cam("explain", model, input, "--method", "class-model,smoothgrad", "--perturbation-batch", "7",
            "--seed", "3", "--out", Dir, "--npy", "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        var raw = Npy.Read(Path.Combine(Dir, "x.class-model.raw.npy"));
        Assert.That(raw.Shape, Is.EqualTo(new[] { 3, 8, 8 }));
        // The PNG is the synthesized image, deprocessed with the model's preprocessing (ImageNet mean and std).
        var png = CamEngine.Imaging.ImageDecoder.Load(Path.Combine(Dir, "x.class-model.png"));
        var pre = CamEngine.Model.Preprocessing.ImageNet(8, 8);
        Assert.That(png.Data, Is.EqualTo(CamEngine.Methods.ClassModel.ToPicture(raw, pre).Data));
        Assert.That(Npy.Read(Path.Combine(Dir, "x.smoothgrad.raw.npy")).Shape, Is.EqualTo(new[] { 3, 8, 8 }));
        AssertOneLineError(Cam("explain", model, input, "--method", "smoothgrad", "--perturbation-batch", "0"), "--perturbation-batch");
    }

    [Test]
    public void Explain_on_a_photo_draws_over_the_crop_at_photo_resolution()
    {
        string photo = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "images", "chelsea.png");
        string model = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_resnet.safetensors");
        var r = Cam("explain", model, photo, "--out", Dir, "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("[1/1] chelsea: class 4"));
        var png = CamEngine.Imaging.ImageDecoder.Load(Path.Combine(Dir, "chelsea.gradcam.png"));
        // The default view: the whole 451x300 photo, the crop (91.9..359.1 x 16.7..283.3) outlined in white 2 px
        // outside its black border; outside the outline the photo is untouched.
        Assert.That((png.Width, png.Height), Is.EqualTo((451, 300)));
        var photoPixels = CamEngine.Imaging.ImageDecoder.Load(photo);
        Assert.That(png[90, 150], Is.EqualTo(((byte)255, (byte)255, (byte)255)));
        Assert.That(png[92, 150], Is.EqualTo(((byte)0, (byte)0, (byte)0)));
        Assert.That(png[10, 150], Is.EqualTo(photoPixels[10, 150]));
        Assert.That(png[200, 150], Is.Not.EqualTo(photoPixels[200, 150]), "the map is blended inside the crop");
        // 451x300 photo, shorter side resized to 36 and cropped to 32: the crop is 32 * 300 / 36 = 267 pixels.
        r = Cam("explain", model, photo, "--view", "crop", "--out", Dir, "--device", Device, "--overwrite");
        Assert.That(r.Code, Is.Zero, r.Err);
        png = CamEngine.Imaging.ImageDecoder.Load(Path.Combine(Dir, "chelsea.gradcam.png"));
        Assert.That((png.Width, png.Height), Is.EqualTo((267, 267)));
        AssertOneLineError(Cam("explain", model, photo, "--view", "wide", "--out", Dir), "unknown view 'wide' (use full, crop)");
    }

    [Test]
    public void Bad_usage_and_bad_names_give_exit_code_2_with_one_line()
    {
        string model = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_gapcnn.safetensors");
        string input = FixturePaths.Input("rocket");
        AssertOneLineError(Cam("explain", model, input, "--method", "nosuch", "--out", Dir), "unknown method 'nosuch'");
        AssertOneLineError(Cam("explain", model, input, "--layer", "layer9", "--out", Dir, "--device", Device),
            "unknown layer 'layer9'");
        AssertOneLineError(Cam("explain", model, input, "--colour", "x"), "unknown option '--colour'");
        AssertOneLineError(Cam("explain", model, input, "--target", "10", "--out", Dir, "--device", Device), "target class 10 is outside the model's 10 outputs");
        AssertOneLineError(Cam("explain", model, Path.Combine(Dir, "missing.png")), "missing.png");
        AssertOneLineError(Cam("frobnicate"), "unknown command 'frobnicate'");
        AssertOneLineError(Cam("explain", model, input, "--device", "tpu"), "unknown device 'tpu'");
        string notImage = Path.Combine(Dir, "notes.png");
        File.WriteAllText(notImage, "hello");
        AssertOneLineError(Cam("explain", model, notImage, "--device", Device), "not a PNG, JPEG or BMP image");
    }

    [Test]
    public void Module_path_layer_names_resolve_like_pytorch_hooks()
    {
        string model = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_resnet.safetensors");
        var r = Cam("explain", model, FixturePaths.Input("chelsea"), "--layer", "block2.relu2", "--out", Dir,
            "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(r.Out, Does.Contain("layer: /block2/relu2/Relu_output_0"));
    }

    [Test]
    public void Help_version_methods_info_and_predict_work()
    {
        var help = Cam("--help");
        Assert.That(help.Code, Is.Zero);
        Assert.That(help.Out, Does.Contain("explain <MODEL> <IMAGE>"));
        foreach (var command in new[] { "convert", "info", "predict", "explain", "methods", "devices" })
        {
            var r = Cam(command, "--help");
            Assert.That(r.Code, Is.Zero, command);
            Assert.That(r.Out, Does.Contain("Usage:\n  cam " + command), command);
        }
        Assert.That(Cam("--version").Out, Does.StartWith("cam 0.1.0"));
        var methods = Cam("methods");
        Assert.That(methods.Out, Does.Contain("gradcam").And.Contain("Selvaraju"));
        string model = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_gapcnn.safetensors");
        var info = Cam("info", model);
        Assert.That(info.Out, Does.Contain("/relu3/Relu_output_0").And.Contain("[64,8,8]"));
        var predict = Cam("predict", model, FixturePaths.Input("astronaut"), "--top", "3", "--device", Device);
        Assert.That(predict.Code, Is.Zero, predict.Err);
        var reference = Npz.ReadAll(FixturePaths.Refs("tiny_gapcnn", "astronaut"));
        int top = (int)reference.Arrays["target_class"].Data[0];
        Assert.That(predict.Out.Split('\n')[1].Trim(), Does.StartWith($"{top}:"));
    }

    [Test]
    public void Existing_outputs_are_kept_unless_overwrite_is_given()
    {
        string model = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_gapcnn.safetensors");
        string input = FixturePaths.Input("rocket");
        Assert.That(Cam("explain", model, input, "--out", Dir, "--device", Device).Code, Is.Zero);
        string png = Path.Combine(Dir, "rocket_32_imagenet.gradcam.png");
        var before = File.ReadAllBytes(png);
        AssertOneLineError(Cam("explain", model, input, "--out", Dir, "--device", Device), "rocket_32_imagenet.gradcam.png exists; nothing was computed; pass --overwrite");
        Assert.That(File.ReadAllBytes(png), Is.EqualTo(before));
        var r = Cam("explain", model, input, "--out", Dir, "--device", Device, "--overwrite", "--target", "3");
        Assert.That(r.Code, Is.Zero, r.Err);
        Assert.That(File.ReadAllBytes(png), Is.Not.EqualTo(before));
        string converted = Path.Combine(Dir, "m.safetensors");
        Assert.That(Cam("convert", FixturePaths.Onnx("tiny_gapcnn"), "-o", converted).Code, Is.Zero);
        AssertOneLineError(Cam("convert", FixturePaths.Onnx("tiny_gapcnn"), "-o", converted), "nothing was computed; pass --overwrite");
        Assert.That(Cam("convert", FixturePaths.Onnx("tiny_gapcnn"), "-o", converted, "--overwrite").Code, Is.Zero);
        Assert.That(Directory.GetFiles(Dir, "*.tmp"), Is.Empty);
        Assert.That(Directory.GetFiles(Dir, ".cam-tmp.*"), Is.Empty);
    }

    [Test]
    public void Method_all_on_a_photo_writes_every_overlay_and_a_complete_grid()
    {
        string photo = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "images", "chelsea.png");
        string model = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_resnet.safetensors");
        // RISE with 200 masks instead of 4000 keeps the test short.
        var r = Cam("explain", model, photo, "--method", "all", "--param", "rise.masks=200", "--out", Dir, "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        // The vision-transformer methods cannot read a CNN: left out with a note, before any work.
        foreach (var m in MethodCatalog.All.Where(m => m is TransformerMethod))
        {
            Assert.That(r.Out, Does.Contain($"note: {m.Name} cannot explain this model: the model has no self-attention"));
            Assert.That(File.Exists(Path.Combine(Dir, $"chelsea.{m.Name}.png")), Is.False, m.Name);
        }
        foreach (var m in MethodCatalog.All.Where(m => m is not TransformerMethod))
            Assert.That(File.Exists(Path.Combine(Dir, $"chelsea.{m.Name}.png")), Is.True, m.Name);
        // 34 tiles of the 267-pixel crop (the class-model image is scaled to match), 6 to a row.
        var grid = CamEngine.Imaging.ImageDecoder.Load(Path.Combine(Dir, "chelsea.grid.png"));
        Assert.That(MethodCatalog.All.Count(m => m is not TransformerMethod), Is.EqualTo(34));
        Assert.That(grid.Width, Is.GreaterThan(6 * 267));
        Assert.That(grid.Height, Is.GreaterThan(6 * 267));
    }

    [Test]
    public void A_method_that_cannot_explain_the_target_is_refused_before_work_or_left_out_of_all()
    {
        string photo = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "images", "chelsea.png");
        string model = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "tiny_resnet.safetensors");
        string similar = "similar:" + photo;
        // Named explicitly: refused by name, nothing written (issue 18: Finer-CAM crashed on similarity targets).
        AssertOneLineError(Cam("explain", model, photo, "--method", "gradcam,finercam", "--target", similar, "--out", Dir, "--device", "cpu"),
            "finercam cannot explain target");
        Assert.That(Directory.Exists(Dir) ? Directory.GetFileSystemEntries(Dir) : [], Is.Empty);
        // Within --method all: left out with a note, every other method drawn.
        var r = Cam("explain", model, photo, "--method", "all", "--param", "rise.masks=200", "--target", similar, "--out", Dir, "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        // Finer-CAM needs a class; RISE and Recipro-CAM score by a class probability unless told score=target.
        string[] leftOut = ["finercam", "rise", "reciprocam"];
        foreach (var name in leftOut)
        {
            Assert.That(r.Out, Does.Contain($"note: {name} cannot explain target"));
            Assert.That(File.Exists(Path.Combine(Dir, $"chelsea.{name}.png")), Is.False, name);
        }
        foreach (var m in MethodCatalog.All.Where(m => !leftOut.Contains(m.Name) && m is not TransformerMethod))
            Assert.That(File.Exists(Path.Combine(Dir, $"chelsea.{m.Name}.png")), Is.True, m.Name);
    }

    [Test]
    public void Method_all_on_a_vision_transformer_draws_the_transformer_methods_and_leaves_out_what_cannot_read_it()
    {
        string photo = Path.Combine(TestContext.CurrentContext.TestDirectory, "bundled", "images", "chelsea.png");
        string model = Path.Combine(Dir, "vit.safetensors");
        Assert.That(Cam("convert", Path.Combine(FixturePaths.Root, "transformers", "vit.opset17.onnx"), "-o", model).Code, Is.Zero);
        var r = Cam("explain", model, photo, "--method", "all", "--param", "rise.masks=200", "--out", Dir, "--device", "cpu");
        Assert.That(r.Code, Is.Zero, r.Err);
        // CAM cannot read the patch-embedding conv's head, DeepLIFT and LRP have no rule for the token ops.
        string[] leftOut = ["cam", "deeplift", "lrp"];
        foreach (var name in leftOut)
        {
            Assert.That(r.Out, Does.Contain($"note: {name} cannot explain this model"));
            Assert.That(File.Exists(Path.Combine(Dir, $"chelsea.{name}.png")), Is.False, name);
        }
        foreach (var m in MethodCatalog.All.Where(m => !leftOut.Contains(m.Name)))
            Assert.That(File.Exists(Path.Combine(Dir, $"chelsea.{m.Name}.png")), Is.True, m.Name);
        Assert.That(File.Exists(Path.Combine(Dir, "chelsea.grid.png")), Is.True);
    }
}
