//! The readers on the real datasets in the shared data folder.

use harden_data::csv::LabelColumn;
use harden_data::source::DatasetSource;
use harden_data::{cifar, csv, testing, tsv};

#[test]
fn mnist_and_fashion_mnist_load_with_published_sizes() {
    let Some(dir) = testing::data_dir() else {
        return;
    };
    for name in ["mnist", "fashion-mnist"] {
        let source: DatasetSource = name.parse().unwrap();
        let summary = source.summary(&dir).unwrap();
        assert_eq!((summary.train, summary.test), (60_000, 10_000), "{name}");
        let s = source.load(&dir).unwrap();
        assert_eq!(s.train.sample_shape(), &[1, 28, 28]);
        assert_eq!(s.test.len(), 10_000);
        assert_eq!(s.train.value_range(), Some((0.0, 1.0)));
        assert!(s.train.class_counts().iter().all(|&c| c > 5_000), "{name}");
    }
}

#[test]
fn cifar_first20_loads() {
    let Some(dir) = testing::data_dir() else {
        return;
    };
    let d = cifar::read(&dir.join("cifar10-first20/test_batch_first20.bin")).unwrap();
    assert_eq!((d.len(), d.sample_shape()), (20, &[3, 32, 32][..]));
    // The first CIFAR-10 test image is a cat (label 3).
    assert_eq!(d.labels()[0], 3);
}

#[test]
fn sklearn_tables_and_embedded_copies_agree() {
    let Some(dir) = testing::data_dir() else {
        return;
    };
    let bc = csv::read(&dir.join("sklearn/breast_cancer.csv"), &LabelColumn::Last).unwrap();
    assert_eq!(bc, harden_data::embedded::breast_cancer());
    let iris = csv::read(&dir.join("sklearn/iris.csv"), &LabelColumn::Last).unwrap();
    assert_eq!(
        (iris.len(), iris.sample_len(), iris.num_classes()),
        (150, 4, 3)
    );
    let wine = csv::read(&dir.join("sklearn/wine_data.csv"), &LabelColumn::Last).unwrap();
    assert_eq!(
        (wine.len(), wine.sample_len(), wine.num_classes()),
        (178, 13, 3)
    );
    let digits = csv::read(&dir.join("sklearn/digits.csv.gz"), &LabelColumn::Last).unwrap();
    assert_eq!((digits.len(), digits.sample_len()), (1797, 64));
}

#[test]
fn text_tables_load() {
    let Some(dir) = testing::data_dir() else {
        return;
    };
    let all = tsv::read(&dir.join("text/sentiment-labelled-sentences/all.tsv")).unwrap();
    assert_eq!((all.len(), all.num_classes()), (3000, 2));
    assert_eq!(
        all.texts()[0],
        "So there is no way for me to plug it in here in the US unless I go by a converter."
    );
    let spam = tsv::read(&dir.join("text/spamassassin/spamassassin.tsv")).unwrap();
    assert_eq!(spam.len(), 6046);
    assert_eq!(spam.labels().iter().filter(|&&l| l == 1).count(), 1896);
}
