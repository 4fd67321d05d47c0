"""metrics.csv's schema: a typed row written as text in one place, read back, and the same
numbers as floats for a tracker."""

import random
import struct

from pyro_vlae.metrics_log import FIVE_DIGITS, MILLISECONDS, SIX_DIGITS, Metrics, MetricsLog, read_metrics
from pyro_vlae.run_folder import METRICS

ROW = Metrics(step=4, beta=0.123456789, loss=98.7654321, elbo=-97.12345678, recon=-90.5,
              kl={"z1": 3.141592653, "z2": 0.000123456789}, seconds=12.3456789)


def test_a_row_is_written_with_each_numbers_precision_and_read_back_as_a_tracker_receives_it(tmp_path):
    path = tmp_path / METRICS
    log = MetricsLog(path, Metrics.columns(["z1", "z2"]))
    log.record(ROW)
    log.close()
    assert path.read_bytes() == (b"step,beta,loss,elbo,recon,kl_z1,kl_z2,seconds\r\n"
                                 b"4,0.123457,98.7654,-97.1235,-90.5,3.1416,0.00012346,12.346\r\n")
    (back,) = read_metrics(path, ["z1", "z2"])
    assert back.step == 4 and {"beta": back.beta, "loss": back.loss, "elbo": back.elbo, "recon": back.recon,
                               "kl_z1": back.kl["z1"], "kl_z2": back.kl["z2"], "seconds": back.seconds} == ROW.scalars()


def test_rounding_to_a_precision_is_the_number_its_text_holds():
    rng = random.Random(0)
    values = [0.0, -0.0, float("inf"), -float("inf"), 9.999995, 0.05, 2.5, 123455.5, 5e-324]
    values += [struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0] for _ in range(2000)]
    values += [rng.uniform(-1, 1) * 10 ** rng.randint(-9, 9) for _ in range(2000)]
    for value in values:
        for precision in (SIX_DIGITS, FIVE_DIGITS, MILLISECONDS):
            assert str(precision.round(value)) == str(float(precision.text(value))), (value, precision)
