"""The embedded synthetic corpus: five tasks of physiologically motivated EEG, written as real EDF.

What a subject's recording holds, and why:

- background: 1/f^beta noise (beta per subject), spatially correlated by electrode distance
  (volume conduction), plus a posterior alpha rhythm at the subject's own peak frequency and a
  central mu rhythm (mu/beta), each a narrow-band process with its own topography;
- nuisance: per-channel gains, sensor noise, mains interference at 50 or 60 Hz, eye blinks over
  the frontal electrodes (and, in sleep, eye movements and muscle tone on their own channels);
- class effects where the literature puts them, scaled by a per-subject responsiveness so that
  cross-subject decoding is hard but possible:

  - ER: frontal alpha asymmetry follows valence, beta/gamma power and alpha suppression follow
    arousal;
  - MI: contralateral mu/beta desynchronisation over C3/C4 (left/right fist), bilateral (both
    fists), vertex (feet) with a small surround synchronisation;
  - MW: frontal-midline theta up and parietal alpha down during mental arithmetic;
  - SS: 30-s epochs: alpha (W), theta with slow eye movements (N1), spindles and K-complexes (N2),
    high-amplitude delta (N3), low-voltage mixed theta with rapid eye movements and atonia (REM);
  - CM: stimulus-locked ERPs: P1, then an N170 over lateral occipito-temporal sites with its
    fronto-central positive counterpart, larger for faces than for houses (which carry the
    larger P2), and induced occipito-temporal theta, stronger for faces.

Each task keeps its own montage, channel spelling and rate, copied from a public dataset (DEAP,
eegmmidb, EEGMAT, Sleep-EDF, Muse/eeg-notebooks), so the corpus exercises the same reader and
name normalisation as real data. Same seed, same bytes.
"""

from eegpt.synth.simulate import MEAS_DATE, TASK_SPECS, Subject, TaskSpec, make_subject, simulate
from eegpt.synth.write import write_corpus, write_recording, write_subject

__all__ = ["MEAS_DATE", "TASK_SPECS", "Subject", "TaskSpec", "make_subject", "simulate", "write_corpus",
           "write_recording", "write_subject"]
