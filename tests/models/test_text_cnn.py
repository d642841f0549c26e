"""The text CNN (Kim 2014): forward and every gradient equal PyTorch's (float64); the word-language task;
a short training run on Debian's word lists (apt-get install wamerican wngerman wfrench wspanish witalian)."""
import numpy as np
import pytest
import torch

from juanji import models
from juanji import random as jrandom
from juanji.cli import main
from juanji.data import sequences
from juanji.nn import CrossEntropyLoss


class TorchTextCNN(torch.nn.Module):
    def __init__(self, vocab_size, embedding_dim, kernel_sizes, channels, num_classes):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, embedding_dim)
        self.convs = torch.nn.ModuleList(torch.nn.Conv1d(embedding_dim, channels, k) for k in kernel_sizes)
        self.fc = torch.nn.Linear(channels * len(kernel_sizes), num_classes)

    def forward(self, x):
        e = self.embedding(x).transpose(1, 2)
        return self.fc(torch.cat([torch.relu(conv(e)).amax(dim=2) for conv in self.convs], dim=1))


def test_forward_and_gradients_equal_torch_float64():
    jrandom.seed(0)
    kernel_sizes = (2, 3, 5)
    model = models.create("text_cnn", num_classes=4, vocab_size=13, seq_len=11, embedding_dim=6,
                          kernel_sizes=kernel_sizes, channels=5).to(np.float64).eval()
    reference = TorchTextCNN(13, 6, kernel_sizes, 5, 4).double()
    state = model.state_dict()
    with torch.no_grad():
        reference.embedding.weight.copy_(torch.from_numpy(state["embedding.weight"]))
        for i in range(len(kernel_sizes)):
            reference.convs[i].weight.copy_(torch.from_numpy(state[f"convs.{i}.conv.weight"]))
            reference.convs[i].bias.copy_(torch.from_numpy(state[f"convs.{i}.conv.bias"]))
        reference.fc.weight.copy_(torch.from_numpy(state["fc.weight"]))
        reference.fc.bias.copy_(torch.from_numpy(state["fc.bias"]))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 13, (6, 11))
    x[:, :3] = 4                                           # a repeated token: its embedding row sums gradients
    labels = rng.integers(0, 4, 6)

    loss_fn = CrossEntropyLoss()
    loss = loss_fn(model(x), labels)
    model.backward(loss_fn.backward())
    expected = torch.nn.functional.cross_entropy(reference(torch.from_numpy(x)), torch.from_numpy(labels))
    expected.backward()
    assert float(loss) == pytest.approx(expected.item(), rel=1e-12)
    grads = {name: grad for name, _, grad in model.parameters()}
    torch_grads = {"embedding.weight": reference.embedding.weight.grad, "fc.weight": reference.fc.weight.grad,
                   "fc.bias": reference.fc.bias.grad}
    for i in range(len(kernel_sizes)):
        torch_grads[f"convs.{i}.conv.weight"] = reference.convs[i].weight.grad
        torch_grads[f"convs.{i}.conv.bias"] = reference.convs[i].bias.grad
    assert grads.keys() == torch_grads.keys()
    for name, grad in torch_grads.items():
        np.testing.assert_allclose(grads[name], grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_builder_checks_and_records_its_input():
    model = models.create("text_cnn", seq_len=20)
    assert model.input_shape == (20,) and model.input_dtype == np.int64
    with pytest.raises(ValueError, match="at most seq_len"):
        models.create("text_cnn", seq_len=4)


def write_lists(root, lists):
    root.mkdir()
    for language, file_name in sequences.LANGUAGES.items():
        (root / file_name).write_text("\n".join(lists.get(language, [])) + "\n", encoding="utf-8")
    return root


def test_word_lists_are_lowercased_letters_only_and_shared_words_dropped(tmp_path):
    root = write_lists(tmp_path / "dict", {"english": ["Hotel", "night", "it's", "a", "knight"],
                                           "german": ["hotel", "Nacht", "straße"], "italian": ["notte", "pizza"]})
    lists = sequences.read_word_lists(str(root))
    assert lists["english"] == ["knight", "night"] and lists["german"] == ["nacht", "straße"]
    assert lists["italian"] == ["notte", "pizza"] and lists["french"] == []


def test_word_languages_split_is_balanced_disjoint_and_encoded(tmp_path):
    words = {language: [f"{language[:3]}{chr(97 + i)}{chr(97 + j)}" for i in range(5) for j in range(5)]
             for language in sequences.LANGUAGES}
    root = write_lists(tmp_path / "dict", words)
    train, test = sequences.word_languages(str(root), train_per_language=15, test_per_language=5, seq_len=5)
    assert len(train) == 75 and len(test) == 25
    assert np.bincount(train.labels).tolist() == [15] * 5 and np.bincount(test.labels).tolist() == [5] * 5
    decode = lambda row: "".join(train.alphabet[i - 1] for i in row if i)  # noqa: E731
    train_words = {decode(row) for row in train.tokens}
    assert not train_words & {decode(row) for row in test.tokens}
    assert all(word[:3] == train.classes[label][:3] for word, label in zip(map(decode, train.tokens), train.labels))
    assert train.model_kwargs() == {"vocab_size": len(train.alphabet) + 1, "seq_len": 5}


def test_encode_pads_and_cuts_and_refuses_unknown_characters():
    np.testing.assert_array_equal(sequences.encode(["ab", "abcab"], "abc", 4), [[1, 2, 0, 0], [1, 2, 3, 1]])
    with pytest.raises(ValueError, match="character 'z' is not in the alphabet"):
        sequences.encode(["az"], "abc")


def test_missing_word_lists_say_what_to_install(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="apt-get install wamerican wngerman wfrench wspanish witalian"):
        sequences.word_languages(str(tmp_path))


@pytest.mark.slow
def test_training_on_word_languages_reaches_86_percent_and_exports(tmp_path, capsys):
    """3 epochs of Adam: at least 86 % of held-out words get the right language (of 5)."""
    out = tmp_path / "run"
    assert main(["train", "--model", "text_cnn", "--data", "words", "--optimizer", "adam", "--lr", "0.003",
                 "--epochs", "3", "--out", str(out), "--no-progress"]) == 0
    final = capsys.readouterr().out.strip().splitlines()[-1]
    accuracy = float(final.split("final test accuracy ")[1].split()[0])
    assert accuracy >= 0.86, final

    onnx, ort = pytest.importorskip("onnx"), pytest.importorskip("onnxruntime")
    assert main(["export", str(out), str(tmp_path / "text_cnn.onnx")]) == 0
    _, test = sequences.load_task("words")
    session = ort.InferenceSession(str(tmp_path / "text_cnn.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": test.tokens})[0]
    assert (logits.argmax(axis=1) == test.labels).mean() == pytest.approx(accuracy, abs=1e-9)

    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    report = capsys.readouterr().out
    assert f"test accuracy {accuracy:.4f}" in report and "(5000 sequences)" in report
    words = ["".join(test.alphabet[i - 1] for i in row if i) for row in test.tokens[:6]]
    assert main(["predict", str(out), *[word.upper() for word in words]]) == 0   # lower-cased by predict
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [word.upper() for word in words]
    expected = [test.classes[i] for i in logits[:6].argmax(axis=1)]   # the exported model's answers
    assert [line.split(": ")[1].split()[0] for line in lines] == expected
    assert all(len(line.split(", ")) == 3 for line in lines)           # the top three languages each
    assert main(["predict", str(out), "x7"]) == 2                        # not a letter of the alphabet
    assert "character '7' is not in the alphabet" in capsys.readouterr().err
